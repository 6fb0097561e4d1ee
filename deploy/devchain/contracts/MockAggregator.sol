// SPDX-License-Identifier: MIT
// Chainlink AggregatorV3-compatible price feed for local runs. The owner moves the price
// (setAnswer, a new round stamped with the block time) or back-dates the latest round
// (setUpdatedAt / setRoundData) so tests can exercise stale-oracle handling.
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract MockAggregator is Ownable {
    struct Round {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
    }

    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;
    uint80 public latestRound;
    mapping(uint80 => Round) private _rounds;

    // Same event as Chainlink's aggregators, so generic feed watchers work unchanged.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    error UnknownRound(uint80 roundId);
    error FutureTimestamp(uint256 updatedAt, uint256 nowTs);

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer, address owner_)
        Ownable(owner_)
    {
        decimals = decimals_;
        description = description_;
        _push(initialAnswer, block.timestamp);
    }

    function setAnswer(int256 answer) external onlyOwner {
        _push(answer, block.timestamp);
    }

    /// New round with an explicit timestamp (may be in the past, never in the future).
    function setRoundData(int256 answer, uint256 updatedAt) external onlyOwner {
        if (updatedAt > block.timestamp) revert FutureTimestamp(updatedAt, block.timestamp);
        _push(answer, updatedAt);
    }

    /// Re-stamps the latest round without changing its answer (makes the feed look stale).
    function setUpdatedAt(uint256 updatedAt) external onlyOwner {
        if (updatedAt > block.timestamp) revert FutureTimestamp(updatedAt, block.timestamp);
        Round storage r = _rounds[latestRound];
        r.updatedAt = updatedAt;
        r.startedAt = updatedAt;
        emit AnswerUpdated(r.answer, latestRound, updatedAt);
    }

    function latestAnswer() external view returns (int256) {
        return _rounds[latestRound].answer;
    }

    function latestTimestamp() external view returns (uint256) {
        return _rounds[latestRound].updatedAt;
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(latestRound);
    }

    function getRoundData(uint80 roundId)
        public
        view
        returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (roundId == 0 || roundId > latestRound) revert UnknownRound(roundId);
        Round storage r = _rounds[roundId];
        return (roundId, r.answer, r.startedAt, r.updatedAt, roundId);
    }

    function _push(int256 answer, uint256 ts) private {
        latestRound += 1;
        _rounds[latestRound] = Round(answer, ts, ts);
        emit AnswerUpdated(answer, latestRound, ts);
    }
}
