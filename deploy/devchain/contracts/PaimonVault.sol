// SPDX-License-Identifier: MIT
// PaimonVault: the fund's vault as the backend sees it (ARCHITECTURE §3.4), a fixture for
// local runs and tests. ERC-4626 share token over USDT with ERC-7540-style asynchronous
// redemption, an RWA asset registry (tiers L2 / L3, L1 = USDT held) and rebalancing trades
// against a market at oracle prices.
//
// Design decisions the backend relies on:
// - Redemptions: requestRedeem escrows the shares in the vault and fixes the gross assets at
//   the current share price; fee = gross * feeBps / 10000 (per channel), settlement time =
//   block time + delay (STANDARD 7 days, EMERGENCY 1 day; both configurable). The EMERGENCY
//   channel is always available (it costs a higher fee). Request ids start at 1.
//   Lifecycle: Pending -> Approved -> Settled, or Pending/Approved -> Rejected (shares go back
//   to the owner), or Pending -> Cancelled by the requester.
// - approve / reject: VIP_APPROVER_ROLE (a manual on-chain vote) or OPERATOR_ROLE (the
//   approval service's key, after it has collected the off-chain EIP-712 approvals).
//   settle: OPERATOR_ROLE, only when due and when L1 covers the net amount. Settlement pushes
//   the USDT to the controller, so nothing stays claimable: the ERC-7540 claim functions
//   (withdraw / redeem) revert with AsyncRedemptionOnly and maxWithdraw / maxRedeem are 0.
//   The fee stays in the vault (it accrues to the remaining holders).
// - NavUpdated is emitted by every operation that changes holdings or supply (deposit, mint,
//   settlement, asset purchase / redemption) and by updateNav() (OPERATOR_ROLE), which the
//   backend calls to record price moves.
// - totalAssets = L1 (USDT held) + sum of asset values at the latest aggregator answer,
//   stale or not (views never revert on a stale feed; trades do, with StalePrice). The
//   pending redemption liability is reported separately and not subtracted.
// - Emergency mode blocks deposits and purchases of L3 assets; selling assets and
//   redemptions go on. pause() (OPERATOR_ROLE or ADMIN_ROLE) stops every state change but
//   configuration; unpause() is ADMIN_ROLE only.
pragma solidity ^0.8.24;

import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

interface IAggregatorV3 {
    function decimals() external view returns (uint8);
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

interface IAssetMarket {
    function buy(address asset, uint256 usdtIn) external returns (uint256);
    function sell(address asset, uint256 amountIn) external returns (uint256);
}

contract PaimonVault is ERC4626, AccessControl, Pausable {
    using SafeERC20 for IERC20;

    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN_ROLE");
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant REBALANCER_ROLE = keccak256("REBALANCER_ROLE");
    bytes32 public constant VIP_APPROVER_ROLE = keccak256("VIP_APPROVER_ROLE");

    uint8 public constant CHANNEL_STANDARD = 0;
    uint8 public constant CHANNEL_EMERGENCY = 1;
    uint8 public constant TIER_L1 = 1;
    uint8 public constant TIER_L2 = 2;
    uint8 public constant TIER_L3 = 3;
    uint16 public constant MAX_FEE_BPS = 1000;
    uint256 public constant MAX_ASSETS = 64;

    enum RedemptionStatus {
        None,
        Pending,
        Approved,
        Rejected,
        Settled,
        Cancelled
    }

    struct Redemption {
        uint256 id;
        address controller;
        address owner;
        uint8 channel;
        RedemptionStatus status;
        uint256 shares;
        uint256 grossAssets;
        uint256 fee;
        uint64 requestedAt;
        uint64 settleTime;
        uint64 decidedAt;
        address decidedBy;
    }

    struct AssetConfig {
        address token;
        address aggregator;
        uint8 tier;
        uint16 targetBps;
        uint16 minBps;
        uint16 maxBps;
    }

    address public market;
    bool public emergencyMode;
    uint16 public standardFeeBps = 10;
    uint16 public emergencyFeeBps = 100;
    uint32 public standardSettlementDelay = 7 days;
    uint32 public emergencySettlementDelay = 1 days;
    uint32 public maxPriceAge = 1 days;

    uint256 public nextRedemptionId = 1;
    /// Net USDT owed to Pending and Approved requests.
    uint256 public pendingRedemptionLiability;
    /// Shares escrowed by Pending and Approved requests.
    uint256 public pendingRedemptionShares;

    mapping(uint256 => Redemption) private _redemptions;
    address[] private _assetList;
    mapping(address => AssetConfig) private _assets;
    mapping(address => bool) private _listed;
    mapping(address => mapping(address => bool)) public isOperator;

    // ERC-7540 standard events.
    event RedeemRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 shares
    );
    event OperatorSet(address indexed controller, address indexed operator, bool approved);
    // Pending -> claimable (ERC-7540 has none; same shape as Centrifuge's).
    event RedeemClaimable(address indexed controller, uint256 indexed requestId, uint256 assets, uint256 shares);

    // The fund's own events.
    event RedemptionRequested(
        uint256 indexed requestId,
        address indexed controller,
        address indexed owner,
        uint8 channel,
        uint256 shares,
        uint256 grossAssets,
        uint256 fee,
        uint64 settleTime
    );
    event RedemptionApproved(uint256 indexed requestId, address indexed approver);
    event RedemptionRejected(uint256 indexed requestId, address indexed approver, string reason);
    event RedemptionSettled(uint256 indexed requestId, address indexed receiver, uint256 assets, uint256 fee);
    event RedemptionCancelled(uint256 indexed requestId, address indexed by);
    event AssetPurchased(address indexed asset, uint256 usdtIn, uint256 amountOut, int256 price);
    event AssetRedeemed(address indexed asset, uint256 amountIn, uint256 usdtOut, int256 price);
    event NavUpdated(uint256 totalAssets, uint256 totalSupply, uint256 sharePrice, uint256 timestamp);
    event EmergencyModeChanged(bool enabled, address indexed by);
    event AssetAdded(
        address indexed token, address indexed aggregator, uint8 tier, uint16 targetBps, uint16 minBps, uint16 maxBps
    );
    event AssetRemoved(address indexed token);
    event AssetTargetChanged(address indexed token, uint16 targetBps, uint16 minBps, uint16 maxBps);
    event RedemptionFeesChanged(uint16 standardFeeBps, uint16 emergencyFeeBps);
    event SettlementDelaysChanged(uint32 standardDelay, uint32 emergencyDelay);
    event MaxPriceAgeChanged(uint32 maxPriceAge);
    event MarketChanged(address indexed previous, address indexed current);

    error ZeroAmount();
    error ZeroAddress();
    error InvalidChannel(uint8 channel);
    error NotAuthorized(address caller, address owner);
    error UnknownRedemption(uint256 requestId);
    error InvalidRedemptionStatus(uint256 requestId, RedemptionStatus status);
    error SettlementNotDue(uint256 requestId, uint64 settleTime);
    error InsufficientLiquidity(uint256 needed, uint256 available);
    error AsyncRedemptionOnly();
    error EmergencyModeActive();
    error AssetAlreadyListed(address token);
    error AssetNotListed(address token);
    error AssetNotEmpty(address token, uint256 balance);
    error TooManyAssets(uint256 max);
    error InvalidTier(uint8 tier);
    error InvalidAllocation(uint16 targetBps, uint16 minBps, uint16 maxBps);
    error TargetsExceedNav(uint256 totalTargetBps);
    error FeeTooHigh(uint16 feeBps, uint16 max);
    error InvalidPrice(address asset, int256 answer);
    error StalePrice(address asset, uint256 updatedAt, uint256 maxAge);
    error SlippageExceeded(address asset, uint256 amountOut, uint256 minOut);
    error MarketNotSet();

    modifier onlyEitherRole(bytes32 a, bytes32 b) {
        if (!hasRole(a, msg.sender) && !hasRole(b, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, a);
        }
        _;
    }

    constructor(IERC20 usdt, address admin, address market_)
        ERC20("Paimon Prime Fund Share", "PPF")
        ERC4626(usdt)
    {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
        _setRoleAdmin(OPERATOR_ROLE, ADMIN_ROLE);
        _setRoleAdmin(REBALANCER_ROLE, ADMIN_ROLE);
        _setRoleAdmin(VIP_APPROVER_ROLE, ADMIN_ROLE);
        market = market_;
        emit MarketChanged(address(0), market_);
    }

    // ---------------------------------------------------------------- deposits (ERC-4626)

    function deposit(uint256 assets, address receiver) public override returns (uint256) {
        _requireDepositsOpen();
        return super.deposit(assets, receiver);
    }

    function mint(uint256 shares, address receiver) public override returns (uint256) {
        _requireDepositsOpen();
        return super.mint(shares, receiver);
    }

    function maxDeposit(address r) public view override returns (uint256) {
        return paused() || emergencyMode ? 0 : super.maxDeposit(r);
    }

    function maxMint(address r) public view override returns (uint256) {
        return paused() || emergencyMode ? 0 : super.maxMint(r);
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares) internal override {
        if (assets == 0 || shares == 0) revert ZeroAmount();
        super._deposit(caller, receiver, assets, shares);
        _emitNav();
    }

    function _requireDepositsOpen() private view {
        _requireNotPaused();
        if (emergencyMode) revert EmergencyModeActive();
    }

    // Synchronous exits do not exist: redemptions go through requestRedeem (ERC-7540).
    function withdraw(uint256, address, address) public pure override returns (uint256) {
        revert AsyncRedemptionOnly();
    }

    function redeem(uint256, address, address) public pure override returns (uint256) {
        revert AsyncRedemptionOnly();
    }

    function previewWithdraw(uint256) public pure override returns (uint256) {
        revert AsyncRedemptionOnly();
    }

    function previewRedeem(uint256) public pure override returns (uint256) {
        revert AsyncRedemptionOnly();
    }

    function maxWithdraw(address) public pure override returns (uint256) {
        return 0;
    }

    function maxRedeem(address) public pure override returns (uint256) {
        return 0;
    }

    // ---------------------------------------------------------------- redemptions (ERC-7540)

    function setOperator(address operator, bool approved) external returns (bool) {
        isOperator[msg.sender][operator] = approved;
        emit OperatorSet(msg.sender, operator, approved);
        return true;
    }

    function requestRedeem(uint256 shares, address controller, address owner, uint8 channel)
        external
        whenNotPaused
        returns (uint256 requestId)
    {
        if (shares == 0) revert ZeroAmount();
        if (controller == address(0) || owner == address(0)) revert ZeroAddress();
        if (channel > CHANNEL_EMERGENCY) revert InvalidChannel(channel);
        if (owner != msg.sender && !isOperator[owner][msg.sender]) _spendAllowance(owner, msg.sender, shares);

        uint256 gross = _convertToAssets(shares, Math.Rounding.Floor);
        if (gross == 0) revert ZeroAmount();
        bool emergency = channel == CHANNEL_EMERGENCY;
        uint256 fee = Math.mulDiv(gross, emergency ? emergencyFeeBps : standardFeeBps, 10_000);
        uint64 settleTime =
            uint64(block.timestamp) + (emergency ? emergencySettlementDelay : standardSettlementDelay);

        _transfer(owner, address(this), shares);
        requestId = nextRedemptionId++;
        _redemptions[requestId] = Redemption({
            id: requestId,
            controller: controller,
            owner: owner,
            channel: channel,
            status: RedemptionStatus.Pending,
            shares: shares,
            grossAssets: gross,
            fee: fee,
            requestedAt: uint64(block.timestamp),
            settleTime: settleTime,
            decidedAt: 0,
            decidedBy: address(0)
        });
        pendingRedemptionLiability += gross - fee;
        pendingRedemptionShares += shares;

        emit RedeemRequest(controller, owner, requestId, msg.sender, shares);
        emit RedemptionRequested(requestId, controller, owner, channel, shares, gross, fee, settleTime);
    }

    function approveRedemption(uint256 requestId) external whenNotPaused onlyEitherRole(VIP_APPROVER_ROLE, OPERATOR_ROLE) {
        Redemption storage r = _redemptionIn(requestId, RedemptionStatus.Pending);
        r.status = RedemptionStatus.Approved;
        r.decidedAt = uint64(block.timestamp);
        r.decidedBy = msg.sender;
        emit RedemptionApproved(requestId, msg.sender);
    }

    function rejectRedemption(uint256 requestId, string calldata reason)
        external
        whenNotPaused
        onlyEitherRole(VIP_APPROVER_ROLE, OPERATOR_ROLE)
    {
        Redemption storage r = _redemption(requestId);
        if (r.status != RedemptionStatus.Pending && r.status != RedemptionStatus.Approved) {
            revert InvalidRedemptionStatus(requestId, r.status);
        }
        r.status = RedemptionStatus.Rejected;
        r.decidedAt = uint64(block.timestamp);
        r.decidedBy = msg.sender;
        _release(r);
        emit RedemptionRejected(requestId, msg.sender, reason);
    }

    function cancelRedemption(uint256 requestId) external whenNotPaused {
        Redemption storage r = _redemptionIn(requestId, RedemptionStatus.Pending);
        if (msg.sender != r.controller && msg.sender != r.owner && !isOperator[r.controller][msg.sender]) {
            revert NotAuthorized(msg.sender, r.controller);
        }
        r.status = RedemptionStatus.Cancelled;
        r.decidedAt = uint64(block.timestamp);
        r.decidedBy = msg.sender;
        _release(r);
        emit RedemptionCancelled(requestId, msg.sender);
    }

    function settleRedemption(uint256 requestId) external whenNotPaused onlyRole(OPERATOR_ROLE) {
        Redemption storage r = _redemptionIn(requestId, RedemptionStatus.Approved);
        if (block.timestamp < r.settleTime) revert SettlementNotDue(requestId, r.settleTime);
        uint256 net = r.grossAssets - r.fee;
        uint256 l1 = l1Balance();
        if (l1 < net) revert InsufficientLiquidity(net, l1);

        r.status = RedemptionStatus.Settled;
        pendingRedemptionLiability -= net;
        pendingRedemptionShares -= r.shares;
        _burn(address(this), r.shares);
        IERC20(asset()).safeTransfer(r.controller, net);

        emit RedeemClaimable(r.controller, requestId, net, r.shares);
        emit Withdraw(msg.sender, r.controller, r.owner, net, r.shares);
        emit RedemptionSettled(requestId, r.controller, net, r.fee);
        _emitNav();
    }

    function getRedemption(uint256 requestId) external view returns (Redemption memory) {
        return _redemption(requestId);
    }

    function redemptionCount() external view returns (uint256) {
        return nextRedemptionId - 1;
    }

    /// ERC-7540: shares of `requestId` still waiting for settlement.
    function pendingRedeemRequest(uint256 requestId, address controller) external view returns (uint256) {
        Redemption storage r = _redemptions[requestId];
        bool open = r.status == RedemptionStatus.Pending || r.status == RedemptionStatus.Approved;
        return open && r.controller == controller ? r.shares : 0;
    }

    /// ERC-7540: settlement pays out directly, so nothing is ever left claimable.
    function claimableRedeemRequest(uint256, address) external pure returns (uint256) {
        return 0;
    }

    function _redemption(uint256 requestId) private view returns (Redemption storage r) {
        r = _redemptions[requestId];
        if (r.status == RedemptionStatus.None) revert UnknownRedemption(requestId);
    }

    function _redemptionIn(uint256 requestId, RedemptionStatus want) private view returns (Redemption storage r) {
        r = _redemption(requestId);
        if (r.status != want) revert InvalidRedemptionStatus(requestId, r.status);
    }

    function _release(Redemption storage r) private {
        pendingRedemptionLiability -= r.grossAssets - r.fee;
        pendingRedemptionShares -= r.shares;
        _transfer(address(this), r.owner, r.shares);
    }

    // ---------------------------------------------------------------- asset registry

    function addAsset(address token, address aggregator, uint8 tier, uint16 targetBps, uint16 minBps, uint16 maxBps)
        external
        onlyRole(ADMIN_ROLE)
    {
        if (token == address(0) || aggregator == address(0)) revert ZeroAddress();
        if (token == asset() || _listed[token]) revert AssetAlreadyListed(token);
        if (tier != TIER_L2 && tier != TIER_L3) revert InvalidTier(tier);
        if (_assetList.length >= MAX_ASSETS) revert TooManyAssets(MAX_ASSETS);
        _checkAllocation(targetBps, minBps, maxBps, _totalTargetBps() + targetBps);
        IAggregatorV3(aggregator).decimals(); // must look like a feed
        _assets[token] = AssetConfig(token, aggregator, tier, targetBps, minBps, maxBps);
        _listed[token] = true;
        _assetList.push(token);
        emit AssetAdded(token, aggregator, tier, targetBps, minBps, maxBps);
    }

    /// Only an empty position can be removed, so removal never moves NAV.
    function removeAsset(address token) external onlyRole(ADMIN_ROLE) {
        _requireListed(token);
        uint256 bal = IERC20(token).balanceOf(address(this));
        if (bal != 0) revert AssetNotEmpty(token, bal);
        uint256 n = _assetList.length;
        for (uint256 i = 0; i < n; i++) {
            if (_assetList[i] == token) {
                _assetList[i] = _assetList[n - 1];
                _assetList.pop();
                break;
            }
        }
        delete _assets[token];
        _listed[token] = false;
        emit AssetRemoved(token);
    }

    function setAssetTarget(address token, uint16 targetBps, uint16 minBps, uint16 maxBps)
        external
        onlyRole(ADMIN_ROLE)
    {
        _requireListed(token);
        AssetConfig storage c = _assets[token];
        _checkAllocation(targetBps, minBps, maxBps, _totalTargetBps() - c.targetBps + targetBps);
        c.targetBps = targetBps;
        c.minBps = minBps;
        c.maxBps = maxBps;
        emit AssetTargetChanged(token, targetBps, minBps, maxBps);
    }

    function getAssets() external view returns (address[] memory) {
        return _assetList;
    }

    function getAssetConfig(address token) external view returns (AssetConfig memory) {
        _requireListed(token);
        return _assets[token];
    }

    function isAssetListed(address token) external view returns (bool) {
        return _listed[token];
    }

    function _requireListed(address token) private view {
        if (!_listed[token]) revert AssetNotListed(token);
    }

    function _totalTargetBps() private view returns (uint256 sum) {
        for (uint256 i = 0; i < _assetList.length; i++) {
            sum += _assets[_assetList[i]].targetBps;
        }
    }

    function _checkAllocation(uint16 targetBps, uint16 minBps, uint16 maxBps, uint256 total) private pure {
        if (minBps > targetBps || targetBps > maxBps || maxBps > 10_000) {
            revert InvalidAllocation(targetBps, minBps, maxBps);
        }
        if (total > 10_000) revert TargetsExceedNav(total);
    }

    // ---------------------------------------------------------------- rebalancing trades

    function purchaseAsset(address token, uint256 usdtIn, uint256 minOut)
        external
        whenNotPaused
        onlyRole(REBALANCER_ROLE)
        returns (uint256 amountOut)
    {
        _requireListed(token);
        if (usdtIn == 0) revert ZeroAmount();
        if (emergencyMode && _assets[token].tier == TIER_L3) revert EmergencyModeActive();
        address m = _market();
        int256 p = _freshPrice(token);
        uint256 l1 = l1Balance();
        if (l1 < usdtIn) revert InsufficientLiquidity(usdtIn, l1);

        IERC20 usdt = IERC20(asset());
        uint256 before = IERC20(token).balanceOf(address(this));
        usdt.forceApprove(m, usdtIn);
        IAssetMarket(m).buy(token, usdtIn);
        usdt.forceApprove(m, 0);
        amountOut = IERC20(token).balanceOf(address(this)) - before;
        if (amountOut < minOut) revert SlippageExceeded(token, amountOut, minOut);
        emit AssetPurchased(token, usdtIn, amountOut, p);
        _emitNav();
    }

    function redeemAsset(address token, uint256 amountIn, uint256 minUsdtOut)
        external
        whenNotPaused
        onlyRole(REBALANCER_ROLE)
        returns (uint256 usdtOut)
    {
        _requireListed(token);
        if (amountIn == 0) revert ZeroAmount();
        address m = _market();
        int256 p = _freshPrice(token);
        uint256 have = IERC20(token).balanceOf(address(this));
        if (have < amountIn) revert InsufficientLiquidity(amountIn, have);

        IERC20 usdt = IERC20(asset());
        uint256 before = usdt.balanceOf(address(this));
        IERC20(token).forceApprove(m, amountIn);
        IAssetMarket(m).sell(token, amountIn);
        IERC20(token).forceApprove(m, 0);
        usdtOut = usdt.balanceOf(address(this)) - before;
        if (usdtOut < minUsdtOut) revert SlippageExceeded(token, usdtOut, minUsdtOut);
        emit AssetRedeemed(token, amountIn, usdtOut, p);
        _emitNav();
    }

    function _market() private view returns (address m) {
        m = market;
        if (m == address(0)) revert MarketNotSet();
    }

    function _freshPrice(address token) private view returns (int256 answer) {
        uint256 updatedAt;
        (, answer,, updatedAt,) = IAggregatorV3(_assets[token].aggregator).latestRoundData();
        if (answer <= 0) revert InvalidPrice(token, answer);
        if (updatedAt > block.timestamp || block.timestamp - updatedAt > maxPriceAge) {
            revert StalePrice(token, updatedAt, maxPriceAge);
        }
    }

    // ---------------------------------------------------------------- NAV views

    function totalAssets() public view override returns (uint256 total) {
        total = l1Balance();
        for (uint256 i = 0; i < _assetList.length; i++) {
            total += assetValue(_assetList[i]);
        }
    }

    /// USDT per 1e18 shares.
    function sharePrice() public view returns (uint256) {
        return _convertToAssets(1e18, Math.Rounding.Floor);
    }

    function l1Balance() public view returns (uint256) {
        return IERC20(asset()).balanceOf(address(this));
    }

    function assetBalance(address token) public view returns (uint256) {
        return IERC20(token).balanceOf(address(this));
    }

    /// Latest aggregator round of a listed asset, as-is (the caller judges staleness).
    function assetPrice(address token) public view returns (int256 answer, uint8 feedDecimals, uint256 updatedAt) {
        _requireListed(token);
        IAggregatorV3 agg = IAggregatorV3(_assets[token].aggregator);
        (, answer,, updatedAt,) = agg.latestRoundData();
        feedDecimals = agg.decimals();
    }

    /// USDT value of the vault's position; 0 while the feed answers a non-positive price.
    function assetValue(address token) public view returns (uint256) {
        (int256 answer, uint8 fd,) = assetPrice(token);
        if (answer <= 0) return 0;
        uint256 bal = IERC20(token).balanceOf(address(this));
        return Math.mulDiv(
            bal,
            uint256(answer) * 10 ** IERC20Metadata(asset()).decimals(),
            10 ** (uint256(fd) + IERC20Metadata(token).decimals())
        );
    }

    function tierValue(uint8 tier) external view returns (uint256 sum) {
        if (tier == TIER_L1) return l1Balance();
        if (tier != TIER_L2 && tier != TIER_L3) revert InvalidTier(tier);
        for (uint256 i = 0; i < _assetList.length; i++) {
            if (_assets[_assetList[i]].tier == tier) sum += assetValue(_assetList[i]);
        }
    }

    function updateNav() external onlyRole(OPERATOR_ROLE) {
        _emitNav();
    }

    function _emitNav() private {
        emit NavUpdated(totalAssets(), totalSupply(), sharePrice(), block.timestamp);
    }

    // ---------------------------------------------------------------- admin

    function setEmergencyMode(bool enabled) external onlyEitherRole(OPERATOR_ROLE, ADMIN_ROLE) {
        emergencyMode = enabled;
        emit EmergencyModeChanged(enabled, msg.sender);
    }

    function pause() external onlyEitherRole(OPERATOR_ROLE, ADMIN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(ADMIN_ROLE) {
        _unpause();
    }

    function setRedemptionFees(uint16 standardBps, uint16 emergencyBps) external onlyRole(ADMIN_ROLE) {
        if (standardBps > MAX_FEE_BPS) revert FeeTooHigh(standardBps, MAX_FEE_BPS);
        if (emergencyBps > MAX_FEE_BPS) revert FeeTooHigh(emergencyBps, MAX_FEE_BPS);
        standardFeeBps = standardBps;
        emergencyFeeBps = emergencyBps;
        emit RedemptionFeesChanged(standardBps, emergencyBps);
    }

    function setSettlementDelays(uint32 standardDelay, uint32 emergencyDelay) external onlyRole(ADMIN_ROLE) {
        standardSettlementDelay = standardDelay;
        emergencySettlementDelay = emergencyDelay;
        emit SettlementDelaysChanged(standardDelay, emergencyDelay);
    }

    function setMaxPriceAge(uint32 age) external onlyRole(ADMIN_ROLE) {
        if (age == 0) revert ZeroAmount();
        maxPriceAge = age;
        emit MaxPriceAgeChanged(age);
    }

    function setMarket(address m) external onlyRole(ADMIN_ROLE) {
        if (m == address(0)) revert ZeroAddress();
        emit MarketChanged(market, m);
        market = m;
    }

    function decimals() public view override(ERC4626) returns (uint8) {
        return super.decimals();
    }
}
