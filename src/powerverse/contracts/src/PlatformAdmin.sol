// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IPlatformAdmin} from "./interfaces/IPlatformAdmin.sol";

/// @title PowerVerse platform administration (whitepaper 5.1 "管理员"): freezes, blacklists and
/// the emergency stop of new orders.
/// @notice ADMIN_ROLE freezes/unfreezes and blacklists/unblacklists an account or a resource
/// (ResourceNFT token id), each with a reason carried in the event. PAUSER_ROLE stops new orders
/// (Market.rent/extend, Orders); money already owed is never held back by a pause, a freeze or a
/// blacklist: `withdraw()` on the paying contracts does not consult this contract.
/// A freeze is temporary (under investigation); a blacklist is a ban. Both block new activity.
contract PlatformAdmin is AccessControl, Pausable, IPlatformAdmin {
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Longest reason string accepted (bytes).
    uint256 public constant MAX_REASON_LENGTH = 512;

    mapping(address account => bool) private _accountFrozen;
    mapping(address account => bool) private _blacklisted;
    mapping(uint256 tokenId => bool) private _resourceFrozen;
    mapping(uint256 tokenId => bool) private _resourceBlacklisted;

    event AccountFrozen(address indexed account, address indexed by, string reason);
    event AccountUnfrozen(address indexed account, address indexed by, string reason);
    event AccountBlacklisted(address indexed account, address indexed by, string reason);
    event AccountUnblacklisted(address indexed account, address indexed by, string reason);
    event ResourceFrozen(uint256 indexed tokenId, address indexed by, string reason);
    event ResourceUnfrozen(uint256 indexed tokenId, address indexed by, string reason);
    event ResourceBlacklisted(uint256 indexed tokenId, address indexed by, string reason);
    event ResourceUnblacklisted(uint256 indexed tokenId, address indexed by, string reason);
    /// @notice Emitted with the reason next to OpenZeppelin's Paused/Unpaused.
    event PauseReason(bool paused, address indexed by, string reason);

    error ZeroAccount();
    error EmptyReason();
    error ReasonTooLong(uint256 length, uint256 max);
    error AccountAlreadyFrozen(address account);
    error AccountNotFrozen(address account);
    error AccountAlreadyBlacklisted(address account);
    error AccountNotBlacklisted(address account);
    error ResourceAlreadyFrozen(uint256 tokenId);
    error ResourceNotFrozen(uint256 tokenId);
    error ResourceAlreadyBlacklisted(uint256 tokenId);
    error ResourceNotBlacklisted(uint256 tokenId);

    /// @param foundation receives DEFAULT_ADMIN_ROLE, ADMIN_ROLE and PAUSER_ROLE.
    constructor(address foundation) {
        if (foundation == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, foundation);
        _grantRole(ADMIN_ROLE, foundation);
        _grantRole(PAUSER_ROLE, foundation);
    }

    // ------------------------------------------------------------------ accounts

    /// @notice Freeze `account`: it can start nothing new until unfrozen.
    function freezeAccount(address account, string calldata reason) external onlyRole(ADMIN_ROLE) {
        _checkReason(reason);
        if (account == address(0)) revert ZeroAccount();
        if (_accountFrozen[account]) revert AccountAlreadyFrozen(account);
        _accountFrozen[account] = true;
        emit AccountFrozen(account, msg.sender, reason);
    }

    /// @notice Lift the freeze of `account`.
    function unfreezeAccount(address account, string calldata reason) external onlyRole(ADMIN_ROLE) {
        _checkReason(reason);
        if (!_accountFrozen[account]) revert AccountNotFrozen(account);
        _accountFrozen[account] = false;
        emit AccountUnfrozen(account, msg.sender, reason);
    }

    /// @notice Blacklist `account`.
    function blacklistAccount(address account, string calldata reason) external onlyRole(ADMIN_ROLE) {
        _checkReason(reason);
        if (account == address(0)) revert ZeroAccount();
        if (_blacklisted[account]) revert AccountAlreadyBlacklisted(account);
        _blacklisted[account] = true;
        emit AccountBlacklisted(account, msg.sender, reason);
    }

    /// @notice Take `account` off the blacklist.
    function unblacklistAccount(address account, string calldata reason)
        external
        onlyRole(ADMIN_ROLE)
    {
        _checkReason(reason);
        if (!_blacklisted[account]) revert AccountNotBlacklisted(account);
        _blacklisted[account] = false;
        emit AccountUnblacklisted(account, msg.sender, reason);
    }

    // ------------------------------------------------------------------ resources

    /// @notice Freeze resource `tokenId`: it cannot be listed or rented until unfrozen.
    function freezeResource(uint256 tokenId, string calldata reason) external onlyRole(ADMIN_ROLE) {
        _checkReason(reason);
        if (_resourceFrozen[tokenId]) revert ResourceAlreadyFrozen(tokenId);
        _resourceFrozen[tokenId] = true;
        emit ResourceFrozen(tokenId, msg.sender, reason);
    }

    /// @notice Lift the freeze of resource `tokenId`.
    function unfreezeResource(uint256 tokenId, string calldata reason) external onlyRole(ADMIN_ROLE) {
        _checkReason(reason);
        if (!_resourceFrozen[tokenId]) revert ResourceNotFrozen(tokenId);
        _resourceFrozen[tokenId] = false;
        emit ResourceUnfrozen(tokenId, msg.sender, reason);
    }

    /// @notice Blacklist resource `tokenId`.
    function blacklistResource(uint256 tokenId, string calldata reason)
        external
        onlyRole(ADMIN_ROLE)
    {
        _checkReason(reason);
        if (_resourceBlacklisted[tokenId]) revert ResourceAlreadyBlacklisted(tokenId);
        _resourceBlacklisted[tokenId] = true;
        emit ResourceBlacklisted(tokenId, msg.sender, reason);
    }

    /// @notice Take resource `tokenId` off the blacklist.
    function unblacklistResource(uint256 tokenId, string calldata reason)
        external
        onlyRole(ADMIN_ROLE)
    {
        _checkReason(reason);
        if (!_resourceBlacklisted[tokenId]) revert ResourceNotBlacklisted(tokenId);
        _resourceBlacklisted[tokenId] = false;
        emit ResourceUnblacklisted(tokenId, msg.sender, reason);
    }

    // ------------------------------------------------------------------ emergency stop

    /// @notice Stop new orders everywhere (settlement, refunds and withdrawals go on).
    function pause(string calldata reason) external onlyRole(PAUSER_ROLE) {
        _checkReason(reason);
        _pause();
        emit PauseReason(true, msg.sender, reason);
    }

    /// @notice Accept new orders again.
    function unpause(string calldata reason) external onlyRole(PAUSER_ROLE) {
        _checkReason(reason);
        _unpause();
        emit PauseReason(false, msg.sender, reason);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IPlatformAdmin
    function isBlacklisted(address account) external view returns (bool) {
        return _blacklisted[account];
    }

    /// @inheritdoc IPlatformAdmin
    function isAccountFrozen(address account) external view returns (bool) {
        return _accountFrozen[account];
    }

    /// @inheritdoc IPlatformAdmin
    function isResourceFrozen(uint256 tokenId) external view returns (bool) {
        return _resourceFrozen[tokenId];
    }

    /// @inheritdoc IPlatformAdmin
    function isResourceBlacklisted(uint256 tokenId) external view returns (bool) {
        return _resourceBlacklisted[tokenId];
    }

    /// @inheritdoc IPlatformAdmin
    function isAccountBlocked(address account) external view returns (bool) {
        return _accountFrozen[account] || _blacklisted[account];
    }

    /// @inheritdoc IPlatformAdmin
    function isResourceBlocked(uint256 tokenId) external view returns (bool) {
        return _resourceFrozen[tokenId] || _resourceBlacklisted[tokenId];
    }

    /// @inheritdoc IPlatformAdmin
    function paused() public view override(IPlatformAdmin, Pausable) returns (bool) {
        return super.paused();
    }

    function _checkReason(string calldata reason) private pure {
        uint256 length = bytes(reason).length;
        if (length == 0) revert EmptyReason();
        if (length > MAX_REASON_LENGTH) revert ReasonTooLong(length, MAX_REASON_LENGTH);
    }
}
