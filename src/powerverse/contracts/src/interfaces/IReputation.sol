// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title Reviews and reputation (whitepaper 5 "用户评价与信誉体系"), as the markets see it.
interface IReputation {
    /// @notice Record that order `orderKey` between `consumer` and `provider` has ended, so both
    /// parties may review each other once. Called by Market (orderKey =
    /// keccak256(abi.encode(market, rentalId))) and Orders; implementations must restrict callers.
    function recordOrder(bytes32 orderKey, address consumer, address provider) external;

    /// @notice Penalise `provider` for a failed delivery of order `orderKey` (e.g. a task deadline
    /// missed). Called by Orders; implementations must restrict callers.
    function recordFailure(address provider, bytes32 orderKey) external;

    /// @notice The reputation score of `account` (scale defined by the implementation).
    function reputationOf(address account) external view returns (uint256);

    /// @notice Accounts whose reputation is below this may not list resources, rent or take tasks.
    function minReputation() external view returns (uint256);
}
