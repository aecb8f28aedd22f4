// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title The arbitration committee's contract (whitepaper 5.1 "仲裁委员会"), as the escrow
/// holders (Market, Orders) see it.
/// @notice A source calls `openDispute` when one side of an order disputes it; the source keeps the
/// escrow frozen until Arbitration calls back `IDisputable(source).resolveDispute(id, share)`.
interface IArbitration {
    /// @notice Register a dispute over order `id` of `source` (the calling contract; implementations
    /// should require msg.sender == source). `amount` is the frozen escrow in wei; `reason` is the
    /// opener's text or content id. Returns the arbitration's own dispute id.
    function openDispute(
        address source,
        uint256 id,
        address consumer,
        address provider,
        uint256 amount,
        string calldata reason
    ) external returns (uint256 disputeId);
}
