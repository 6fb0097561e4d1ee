// SPDX-License-Identifier: MIT
// Test fixture for the listener tests and benchmark: emits many logs cheaply so a
// test can put N events across M blocks (and a bench 100,000+) on its own anvil.
pragma solidity ^0.8.20;

contract Emitter {
    event Ping(address indexed from, uint256 indexed seq, uint256 amount);
    event Paused(address account);

    uint256 public seq;

    function emitMany(uint256 n, uint256 amount) external {
        uint256 s = seq;
        for (uint256 i = 0; i < n; i++) {
            emit Ping(msg.sender, s + i, amount);
        }
        seq = s + n;
    }

    function pause() external {
        emit Paused(msg.sender);
    }
}
