// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title The views other system contracts read from PlatformAdmin (freezes, blacklists, pause).
interface IPlatformAdmin {
    /// @notice True while `account` is blacklisted.
    function isBlacklisted(address account) external view returns (bool);

    /// @notice True while `account` is frozen.
    function isAccountFrozen(address account) external view returns (bool);

    /// @notice True while resource `tokenId` is frozen.
    function isResourceFrozen(uint256 tokenId) external view returns (bool);

    /// @notice True while resource `tokenId` is blacklisted.
    function isResourceBlacklisted(uint256 tokenId) external view returns (bool);

    /// @notice True when `account` may not start anything new (frozen or blacklisted).
    function isAccountBlocked(address account) external view returns (bool);

    /// @notice True when resource `tokenId` may not be listed or rented (frozen or blacklisted).
    function isResourceBlocked(uint256 tokenId) external view returns (bool);

    /// @notice True while new orders are stopped.
    function paused() external view returns (bool);
}
