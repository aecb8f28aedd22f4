// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title A contract holding escrows that the Arbitration contract can rule on.
/// @notice Implemented by Market (rentals) and Orders (task and demand orders). The source hands a
/// dispute to `IArbitration.openDispute(address(this), id, ...)` and freezes the escrow; the
/// arbitration committee's ruling comes back through `resolveDispute`.
interface IDisputable {
    /// @notice Emitted by the source when a ruling splits a disputed escrow.
    event DisputeResolved(uint256 indexed id, uint256 consumerShare, uint256 providerShare);

    /// @notice Split the frozen escrow of order `id`: `consumerShare` wei back to the consumer,
    /// the rest to the provider (minus the platform fee). Callable only by
    /// SystemAddresses.ARBITRATION (sources may also accept a local arbiter role while no
    /// arbitration contract is deployed). Reverts when `id` is not in dispute or
    /// `consumerShare` exceeds the escrow.
    function resolveDispute(uint256 id, uint256 consumerShare) external;
}
