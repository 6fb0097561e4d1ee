// SPDX-License-Identifier: MIT
// Dev-only ERC-20 fixtures: the fund's cash token (USDT, 18 decimals as on BSC) and the
// RWA asset tokens the vault buys. Both are mintable by the owner and by "minters" (the
// MockMarket mints what it sells), so the local market never runs out of inventory.
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

abstract contract MintableERC20 is ERC20, Ownable {
    uint8 private immutable _decimals;
    mapping(address => bool) public isMinter;

    event MinterSet(address indexed minter, bool enabled);

    error NotMinter(address caller);

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address owner_)
        ERC20(name_, symbol_)
        Ownable(owner_)
    {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function setMinter(address minter, bool enabled) external onlyOwner {
        isMinter[minter] = enabled;
        emit MinterSet(minter, enabled);
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != owner() && !isMinter[msg.sender]) revert NotMinter(msg.sender);
        _mint(to, amount);
    }

    function burn(uint256 amount) external {
        _burn(msg.sender, amount);
    }
}

/// Mock USDT: 18 decimals like BSC-USD. Anyone may draw a bounded amount from the faucet
/// so local tools can fund throwaway accounts without the owner key.
contract MockUSDT is MintableERC20 {
    uint256 public constant FAUCET_MAX = 1_000_000e18;

    error FaucetLimit(uint256 requested, uint256 max);

    constructor(address owner_) MintableERC20("Mock Tether USD", "USDT", 18, owner_) {}

    function faucet(uint256 amount) external {
        if (amount > FAUCET_MAX) revert FaucetLimit(amount, FAUCET_MAX);
        _mint(msg.sender, amount);
    }
}

/// A tokenized real-world asset (T-bill, money-market fund, real estate, credit ...).
contract RWAToken is MintableERC20 {
    constructor(string memory name_, string memory symbol_, uint8 decimals_, address owner_)
        MintableERC20(name_, symbol_, decimals_, owner_)
    {}
}
