// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title The airdrop: a fixed amount of native PVC to each eligible member, claimed once.
/// @notice Predeployed at 0x…2005 holding 28,000,000 PVC: 500 PVC per claim, at most 56,000
/// claims (docs/tokenomics.md). An address is eligible when a `REGISTRAR_ROLE` holder has
/// registered it (`register`), or when it proves membership of the Merkle tree whose root the
/// admin set (`setMerkleRoot`; leaf = `keccak256(bytes.concat(keccak256(abi.encode(account))))`,
/// OpenZeppelin's StandardMerkleTree for `address`). Each address is paid once, whichever way it
/// is eligible. `claimFor` lets anyone pay the claim of an eligible address to that address (so
/// a member without coin for gas can be claimed for); the coin always goes to the member.
///
/// Invariant: `address(this).balance >= claimAmount * (maxClaims - claimCount)`.
contract Airdrop is AccessControl, ReentrancyGuard {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    /// @notice Wei paid per claim.
    uint256 public immutable claimAmount;
    /// @notice Claims the funding covers; later claims are refused.
    uint256 public immutable maxClaims;

    /// @notice The Merkle root of eligible addresses (zero: none set).
    bytes32 public merkleRoot;
    /// @notice Claims paid so far.
    uint256 public claimCount;
    /// @notice Addresses registered by a registrar.
    uint256 public registeredCount;

    mapping(address account => bool) private _registered;
    mapping(address account => bool) private _claimed;

    event MemberRegistered(address indexed account, address indexed registrar);
    event MerkleRootSet(bytes32 oldRoot, bytes32 newRoot, address indexed admin);
    event Claimed(address indexed account, address indexed caller, uint256 amount, bool byProof);

    error ZeroAddress();
    error ZeroAmount();
    error FundingMismatch(uint256 expected, uint256 received);
    error AlreadyClaimed(address account);
    error NotEligible(address account);
    error AirdropExhausted(uint256 maxClaims);

    /// @param admin Holds DEFAULT_ADMIN_ROLE (sets the Merkle root, grants roles) and
    /// REGISTRAR_ROLE.
    /// @param claimAmount_ Wei per claim.
    /// @param maxClaims_ Claims the funding covers; `msg.value` must be exactly
    /// `claimAmount_ * maxClaims_`.
    constructor(address admin, uint256 claimAmount_, uint256 maxClaims_) payable {
        if (admin == address(0)) revert ZeroAddress();
        if (claimAmount_ == 0 || maxClaims_ == 0) revert ZeroAmount();
        uint256 expected = claimAmount_ * maxClaims_;
        if (msg.value != expected) revert FundingMismatch(expected, msg.value);
        claimAmount = claimAmount_;
        maxClaims = maxClaims_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    /// @notice REGISTRAR_ROLE: make `accounts` eligible (already registered ones are skipped).
    /// @return added How many were newly registered.
    function register(address[] calldata accounts)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (uint256 added)
    {
        for (uint256 i = 0; i < accounts.length; ++i) {
            address account = accounts[i];
            if (account == address(0)) revert ZeroAddress();
            if (_registered[account]) continue;
            _registered[account] = true;
            ++added;
            emit MemberRegistered(account, msg.sender);
        }
        registeredCount += added;
    }

    /// @notice DEFAULT_ADMIN_ROLE: set (or replace, or clear with zero) the Merkle root.
    function setMerkleRoot(bytes32 root) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit MerkleRootSet(merkleRoot, root, msg.sender);
        merkleRoot = root;
    }

    /// @notice Claim for the caller (`proof` empty when registered).
    function claim(bytes32[] calldata proof) external returns (uint256) {
        return _claim(msg.sender, proof);
    }

    /// @notice Claim for `account` (anyone may call; `account` receives the coin).
    function claimFor(address account, bytes32[] calldata proof) external returns (uint256) {
        return _claim(account, proof);
    }

    /// @notice Whether `account` was registered by a registrar.
    function isRegistered(address account) public view returns (bool) {
        return _registered[account];
    }

    /// @notice Whether `account` has been paid.
    function hasClaimed(address account) external view returns (bool) {
        return _claimed[account];
    }

    /// @notice Whether `proof` shows `account` in the Merkle tree of `merkleRoot`.
    function inMerkleTree(address account, bytes32[] calldata proof) public view returns (bool) {
        bytes32 root = merkleRoot;
        if (root == bytes32(0)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice Whether `account` could claim now with `proof` (empty when registered).
    function canClaim(address account, bytes32[] calldata proof) external view returns (bool) {
        return !_claimed[account] && claimCount < maxClaims
            && (_registered[account] || inMerkleTree(account, proof));
    }

    /// @notice Claims left before the airdrop is exhausted.
    function remainingClaims() external view returns (uint256) {
        return maxClaims - claimCount;
    }

    function _claim(address account, bytes32[] calldata proof)
        private
        nonReentrant
        returns (uint256)
    {
        if (account == address(0)) revert ZeroAddress();
        if (_claimed[account]) revert AlreadyClaimed(account);
        bool byProof = false;
        if (!_registered[account]) {
            if (!inMerkleTree(account, proof)) revert NotEligible(account);
            byProof = true;
        }
        if (claimCount >= maxClaims) revert AirdropExhausted(maxClaims);
        _claimed[account] = true;
        ++claimCount;
        emit Claimed(account, msg.sender, claimAmount, byProof);
        Address.sendValue(payable(account), claimAmount);
        return claimAmount;
    }
}
