// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

import {SystemAddresses} from "../SystemAddresses.sol";

/// @title The PowerVerse DAO's vote (OpenZeppelin Governor).
/// @notice Token holders vote with vPVC (VotesPVC), weighed at the vote's start (the proposal
/// snapshot, `votingDelay` seconds after it is put to the vote), for `votingPeriod` seconds.
/// A proposal passes when For + Abstain reach the quorum (a percentage of the vPVC supply at
/// the snapshot) and For is more than `passThresholdBps` of For + Against. Passed proposals
/// are queued in the DaoTimelock and run by it. Only the DAO's own contracts put proposals to
/// the vote: DaoProposals (after the review committee approved them, and for escalated
/// disputes) and DaoProjects (continuation votes). Every setting changes only by a passed vote.
contract DaoGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    uint16 public constant BPS = 10_000;

    /// @notice For must exceed this share (basis points) of For + Against.
    uint16 public passThresholdBps;

    event PassThresholdUpdated(uint16 oldBps, uint16 newBps);

    error NotDaoContract(address caller);
    error InvalidPassThreshold(uint16 bps);

    constructor(uint48 votingDelay_, uint32 votingPeriod_, uint256 quorumPercent, uint16 passThresholdBps_)
        Governor("PowerVerse DAO")
        GovernorSettings(votingDelay_, votingPeriod_, 0)
        GovernorVotes(IVotes(SystemAddresses.VOTES_PVC))
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorTimelockControl(TimelockController(payable(SystemAddresses.DAO_TIMELOCK)))
    {
        _setPassThreshold(passThresholdBps_);
    }

    /// @notice Put a proposal to the vote: DaoProposals and DaoProjects only.
    function propose(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description
    ) public override returns (uint256) {
        if (msg.sender != SystemAddresses.DAO_PROPOSALS && msg.sender != SystemAddresses.DAO_PROJECTS) {
            revert NotDaoContract(msg.sender);
        }
        return super.propose(targets, values, calldatas, description);
    }

    /// @notice Governance: the pass threshold, in basis points of For + Against (5,000-9,999).
    function setPassThreshold(uint16 bps) external onlyGovernance {
        _setPassThreshold(bps);
    }

    function _setPassThreshold(uint16 bps) private {
        if (bps < BPS / 2 || bps >= BPS) revert InvalidPassThreshold(bps);
        emit PassThresholdUpdated(passThresholdBps, bps);
        passThresholdBps = bps;
    }

    /// @dev For > passThresholdBps of (For + Against); no votes at all never pass.
    function _voteSucceeded(uint256 proposalId) internal view override(Governor, GovernorCountingSimple) returns (bool) {
        (uint256 againstVotes, uint256 forVotes,) = proposalVotes(proposalId);
        return forVotes > 0 && forVotes * BPS > (forVotes + againstVotes) * passThresholdBps;
    }

    // ------------------------------------------------------------------ required overrides

    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    function quorum(uint256 timepoint)
        public
        view
        override(Governor, GovernorVotesQuorumFraction)
        returns (uint256)
    {
        return super.quorum(timepoint);
    }

    function state(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (ProposalState)
    {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
