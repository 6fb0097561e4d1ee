// SPDX-License-Identifier: MIT
// The counterparty for the vault's rebalancing trades in local runs: swaps USDT for an RWA
// token and back at the token's aggregator price, less an optional spread (in bps) so
// tests can provoke slippage. It mints what it pays out (it is a minter of every token),
// so its liquidity never runs dry.
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

interface IMintable {
    function mint(address to, uint256 amount) external;
}

interface IPriceFeed {
    function decimals() external view returns (uint8);
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

contract MockMarket is Ownable {
    using SafeERC20 for IERC20;

    uint16 public constant MAX_SPREAD_BPS = 1000;
    address public immutable usdt;
    uint16 public spreadBps;
    mapping(address => address) public aggregatorOf;

    event AssetListed(address indexed asset, address indexed aggregator);
    event SpreadSet(uint16 spreadBps);
    event Trade(
        address indexed trader, address indexed asset, bool buy, uint256 amountIn, uint256 amountOut, int256 price
    );

    error UnsupportedAsset(address asset);
    error InvalidPrice(address asset, int256 answer);
    error SpreadTooHigh(uint16 spreadBps, uint16 max);
    error ZeroAmount();

    constructor(address usdt_, address owner_) Ownable(owner_) {
        usdt = usdt_;
    }

    function setAsset(address asset, address aggregator) external onlyOwner {
        aggregatorOf[asset] = aggregator;
        emit AssetListed(asset, aggregator);
    }

    function setSpread(uint16 bps) external onlyOwner {
        if (bps > MAX_SPREAD_BPS) revert SpreadTooHigh(bps, MAX_SPREAD_BPS);
        spreadBps = bps;
        emit SpreadSet(bps);
    }

    function price(address asset) public view returns (int256 answer, uint8 feedDecimals) {
        address agg = aggregatorOf[asset];
        if (agg == address(0)) revert UnsupportedAsset(asset);
        (, answer,,,) = IPriceFeed(agg).latestRoundData();
        if (answer <= 0) revert InvalidPrice(asset, answer);
        feedDecimals = IPriceFeed(agg).decimals();
    }

    /// Asset tokens received for `usdtIn` USDT.
    function quoteBuy(address asset, uint256 usdtIn) public view returns (uint256) {
        (int256 p, uint8 fd) = price(asset);
        uint256 gross = Math.mulDiv(
            usdtIn,
            10 ** (uint256(fd) + IERC20Metadata(asset).decimals()),
            uint256(p) * 10 ** IERC20Metadata(usdt).decimals()
        );
        return gross - Math.mulDiv(gross, spreadBps, 10_000, Math.Rounding.Ceil);
    }

    /// USDT received for `amountIn` asset tokens.
    function quoteSell(address asset, uint256 amountIn) public view returns (uint256) {
        (int256 p, uint8 fd) = price(asset);
        uint256 gross = Math.mulDiv(
            amountIn,
            uint256(p) * 10 ** IERC20Metadata(usdt).decimals(),
            10 ** (uint256(fd) + IERC20Metadata(asset).decimals())
        );
        return gross - Math.mulDiv(gross, spreadBps, 10_000, Math.Rounding.Ceil);
    }

    function buy(address asset, uint256 usdtIn) external returns (uint256 out) {
        if (usdtIn == 0) revert ZeroAmount();
        out = quoteBuy(asset, usdtIn);
        IERC20(usdt).safeTransferFrom(msg.sender, address(this), usdtIn);
        IMintable(asset).mint(msg.sender, out);
        (int256 p,) = price(asset);
        emit Trade(msg.sender, asset, true, usdtIn, out, p);
    }

    function sell(address asset, uint256 amountIn) external returns (uint256 out) {
        if (amountIn == 0) revert ZeroAmount();
        out = quoteSell(asset, amountIn);
        IERC20(asset).safeTransferFrom(msg.sender, address(this), amountIn);
        uint256 have = IERC20(usdt).balanceOf(address(this));
        if (have >= out) {
            IERC20(usdt).safeTransfer(msg.sender, out);
        } else {
            if (have > 0) IERC20(usdt).safeTransfer(msg.sender, have);
            IMintable(usdt).mint(msg.sender, out - have);
        }
        (int256 p,) = price(asset);
        emit Trade(msg.sender, asset, false, amountIn, out, p);
    }
}
