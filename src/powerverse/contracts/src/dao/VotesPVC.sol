// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {SystemAddresses} from "../SystemAddresses.sol";

/// @title PVC voting power for the PowerVerse DAO (non-transferable ERC20Votes, "vPVC").
/// @notice PVC is the chain's native coin, so no contract can snapshot its balances. Voting
/// power is this token instead: 1 vPVC per wei of PVC that is either locked here (`deposit`,
/// returned by `withdraw`) or staked in Staking (minted and burnt by Staking through
/// STAKING_ROLE). Units only move by mint and burn; they count as votes once delegated
/// (self-delegation included), and `deposit` / `mintStaked` self-delegate an account that has
/// no delegate yet. The clock is the block timestamp (ERC-6372 `mode=timestamp`).
/// The balance of this contract always equals `totalDeposited`.
contract VotesPVC is ERC20, ERC20Votes, AccessControl, ReentrancyGuard {
    bytes32 public constant STAKING_ROLE = keccak256("STAKING_ROLE");

    /// @notice PVC (wei) `account` has locked here; `withdraw` returns at most this.
    mapping(address account => uint256) public depositedOf;
    /// @notice vPVC `account` holds for PVC staked in Staking.
    mapping(address account => uint256) public stakedOf;
    uint256 public totalDeposited;
    uint256 public totalStaked;

    event Deposited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event StakedMinted(address indexed account, uint256 amount);
    event StakedBurnt(address indexed account, uint256 requested, uint256 burnt);

    error NonTransferable();
    error ZeroAmount();
    error ZeroAccount();
    error InsufficientDeposit(address account, uint256 deposited, uint256 requested);
    error TransferFailed(address to, uint256 amount);
    error LengthMismatch();

    /// @param stakers the genesis validators, whose genesis stake is minted as staked vPVC.
    constructor(address[] memory stakers, uint256[] memory amounts)
        ERC20("PowerVerse Votes", "vPVC")
        EIP712("PowerVerse Votes", "1")
    {
        if (stakers.length != amounts.length) revert LengthMismatch();
        _grantRole(DEFAULT_ADMIN_ROLE, SystemAddresses.DAO_TIMELOCK);
        _grantRole(STAKING_ROLE, SystemAddresses.STAKING);
        for (uint256 i = 0; i < stakers.length; ++i) {
            _mintStaked(stakers[i], amounts[i]);
        }
    }

    // ------------------------------------------------------------------ ERC-6372 clock

    /// @notice ERC-6372: votes are checkpointed by block timestamp.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372: the clock is the block timestamp.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    // ------------------------------------------------------------------ locked PVC

    /// @notice Lock msg.value PVC for as many vPVC; self-delegates an account with no delegate.
    function deposit() external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        depositedOf[msg.sender] += msg.value;
        totalDeposited += msg.value;
        _mint(msg.sender, msg.value);
        _delegateByDefault(msg.sender);
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Burn `amount` vPVC and get as much locked PVC back.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 held = depositedOf[msg.sender];
        if (amount > held) revert InsufficientDeposit(msg.sender, held, amount);
        depositedOf[msg.sender] = held - amount;
        totalDeposited -= amount;
        _burn(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ------------------------------------------------------------------ staked PVC (Staking)

    /// @notice Staking: `account` bonded `amount` more wei (as validator or delegator).
    function mintStaked(address account, uint256 amount) external onlyRole(STAKING_ROLE) {
        _mintStaked(account, amount);
    }

    /// @notice Staking: `account`'s bonded stake fell by `amount` wei (undelegated, unbonded).
    /// Burns at most what `account` holds as staked vPVC, so it never makes Staking revert.
    function burnStaked(address account, uint256 amount) external onlyRole(STAKING_ROLE) {
        uint256 held = stakedOf[account];
        uint256 burnt = amount < held ? amount : held;
        if (burnt > 0) {
            stakedOf[account] = held - burnt;
            totalStaked -= burnt;
            _burn(account, burnt);
        }
        emit StakedBurnt(account, amount, burnt);
    }

    // ------------------------------------------------------------------ internals

    function _mintStaked(address account, uint256 amount) private {
        if (account == address(0)) revert ZeroAccount();
        if (amount == 0) return;
        stakedOf[account] += amount;
        totalStaked += amount;
        _mint(account, amount);
        _delegateByDefault(account);
        emit StakedMinted(account, amount);
    }

    function _delegateByDefault(address account) private {
        if (delegates(account) == address(0)) _delegate(account, account);
    }

    /// @dev Units only appear and disappear: any transfer between two accounts is refused.
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        if (from != address(0) && to != address(0)) revert NonTransferable();
        super._update(from, to, value);
    }

    /// @dev No allowances: nothing could ever be transferred with them.
    function _approve(address, address, uint256, bool) internal pure override {
        revert NonTransferable();
    }
}
