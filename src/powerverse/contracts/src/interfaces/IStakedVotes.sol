// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title Voting power for staked PVC (the DAO's VotesPVC, docs/dao.md), as Staking sees it.
interface IStakedVotes {
    /// @notice `account` bonded `amount` more wei (as validator or delegator).
    function mintStaked(address account, uint256 amount) external;

    /// @notice `account`'s bonded stake fell by `amount` wei (it undelegated). Never reverts on
    /// the amount (burns at most what the account holds).
    function burnStaked(address account, uint256 amount) external;
}
