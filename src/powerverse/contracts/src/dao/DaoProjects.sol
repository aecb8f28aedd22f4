// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {SystemAddresses} from "../SystemAddresses.sol";

/// @title DAO-funded projects: milestone payments to an execution team, under supervision.
/// @notice A passed proposal with a budget makes the timelock call `create`, paying the whole
/// budget from the treasury into escrow here. The supervision group (SUPERVISOR_ROLE, managed
/// by the DAO) releases the milestones one by one as the team reports progress; it may pause a
/// project that deviates from its plan and put its continuation to a new DAO vote
/// (`proposeContinuation`): passed, the timelock resumes it; defeated or expired, anyone closes
/// it and the unpaid budget returns to the treasury (the DAO may also `cancel` by vote). The
/// last milestone is paid only on acceptance: a supervisor accepts the results (a report
/// content id), which is published in an event and by `resultOf`. Payments are pulled
/// (`withdraw`); the balance always equals `totalEscrowed + totalOwed`.
contract DaoProjects is AccessControl, ReentrancyGuard {
    bytes32 public constant SUPERVISOR_ROLE = keccak256("SUPERVISOR_ROLE");
    uint256 public constant MAX_TEXT = 2048;

    enum Status {
        None,
        Active,
        Paused,
        Cancelled,
        Completed
    }

    struct Project {
        uint256 proposalId;
        address team;
        Status status;
        uint32 released;
        uint64 createdAt;
        uint64 closedAt;
        uint256 budget;
        uint256 paid;
        uint256 continuationVote;
        uint32 votes;
        string result;
    }

    uint256 public projectCount;
    mapping(uint256 projectId => Project) private _projects;
    mapping(uint256 projectId => uint256[]) private _milestones;
    mapping(uint256 proposalId => uint256) public projectOfProposal;
    mapping(address account => uint256) public owed;
    uint256 public totalEscrowed;
    uint256 public totalOwed;

    event ProjectCreated(uint256 indexed projectId, uint256 indexed proposalId, address indexed team, uint256 budget, uint256 milestones);
    event ProgressReported(uint256 indexed projectId, address indexed by, string report);
    event MilestoneReleased(uint256 indexed projectId, uint256 indexed index, uint256 amount, address indexed by, string note);
    event ProjectPaused(uint256 indexed projectId, address indexed by, string reason);
    event ContinuationProposed(uint256 indexed projectId, uint256 indexed governorId, address indexed by);
    event ProjectResumed(uint256 indexed projectId);
    event ProjectCancelled(uint256 indexed projectId, uint256 refunded, string reason);
    event ProjectAccepted(uint256 indexed projectId, address indexed by, string report, uint256 lastMilestone);
    event Withdrawn(address indexed account, uint256 amount);

    error NotTimelock(address caller);
    error NotTeam(uint256 projectId, address caller);
    error UnknownProject(uint256 projectId);
    error ProjectNotInState(uint256 projectId, Status expected, Status actual);
    error WrongBudget(uint256 sent, uint256 budget);
    error InvalidMilestones();
    error ZeroAccount();
    error ProjectExists(uint256 proposalId);
    error LastMilestoneNeedsAcceptance(uint256 projectId);
    error MilestonesOutstanding(uint256 projectId, uint256 released, uint256 count);
    error VoteOpen(uint256 projectId, uint256 governorId);
    error NoContinuationVote(uint256 projectId);
    error VoteNotLost(uint256 projectId, uint256 governorId, IGovernor.ProposalState state);
    error EmptyText(string field);
    error TextTooLong(string field, uint256 length, uint256 max);
    error NothingOwed(address account);
    error TransferFailed(address to, uint256 amount);

    modifier onlyTimelock() {
        if (msg.sender != SystemAddresses.DAO_TIMELOCK) revert NotTimelock(msg.sender);
        _;
    }

    constructor(address[] memory supervisors) {
        _grantRole(DEFAULT_ADMIN_ROLE, SystemAddresses.DAO_TIMELOCK);
        for (uint256 i = 0; i < supervisors.length; ++i) {
            if (supervisors[i] == address(0)) revert ZeroAccount();
            _grantRole(SUPERVISOR_ROLE, supervisors[i]);
        }
    }

    // ------------------------------------------------------------------ DAO

    /// @notice Timelock: fund the project of passed proposal `proposalId` (msg.value = budget).
    function create(uint256 proposalId, address team, uint256[] calldata milestones)
        external
        payable
        onlyTimelock
        returns (uint256 projectId)
    {
        if (team == address(0)) revert ZeroAccount();
        if (milestones.length == 0) revert InvalidMilestones();
        if (projectOfProposal[proposalId] != 0) revert ProjectExists(proposalId);
        uint256 budget;
        for (uint256 i = 0; i < milestones.length; ++i) {
            if (milestones[i] == 0) revert InvalidMilestones();
            budget += milestones[i];
        }
        if (msg.value != budget) revert WrongBudget(msg.value, budget);
        projectId = ++projectCount;
        Project storage p = _projects[projectId];
        p.proposalId = proposalId;
        p.team = team;
        p.status = Status.Active;
        p.createdAt = uint64(block.timestamp);
        p.budget = budget;
        _milestones[projectId] = milestones;
        projectOfProposal[proposalId] = projectId;
        totalEscrowed += budget;
        emit ProjectCreated(projectId, proposalId, team, budget, milestones.length);
    }

    /// @notice Timelock: a continuation vote passed; payments go on.
    function resume(uint256 projectId) external onlyTimelock {
        Project storage p = _inState(projectId, Status.Paused);
        p.status = Status.Active;
        emit ProjectResumed(projectId);
    }

    /// @notice Timelock: stop the project; its unpaid budget returns to the treasury.
    function cancel(uint256 projectId, string calldata reason) external onlyTimelock nonReentrant {
        Project storage p = _project(projectId);
        if (p.status != Status.Active && p.status != Status.Paused) {
            revert ProjectNotInState(projectId, Status.Paused, p.status);
        }
        _checkText("reason", reason);
        _close(projectId, p, reason);
    }

    // ------------------------------------------------------------------ team

    /// @notice The team reports progress (text or content id; event only).
    function reportProgress(uint256 projectId, string calldata report) external {
        Project storage p = _project(projectId);
        if (msg.sender != p.team) revert NotTeam(projectId, msg.sender);
        _checkText("report", report);
        emit ProgressReported(projectId, msg.sender, report);
    }

    // ------------------------------------------------------------------ supervision

    /// @notice Supervisor: pay the next milestone (not the last: that one needs acceptance).
    function releaseMilestone(uint256 projectId, string calldata note) external onlyRole(SUPERVISOR_ROLE) {
        Project storage p = _inState(projectId, Status.Active);
        uint256 index = p.released;
        uint256[] storage ms = _milestones[projectId];
        if (index + 1 >= ms.length) revert LastMilestoneNeedsAcceptance(projectId);
        _checkText("note", note);
        _credit(projectId, p, ms[index]);
        emit MilestoneReleased(projectId, index, ms[index], msg.sender, note);
    }

    /// @notice Supervisor: stop the payments of a project that deviates from its plan.
    function pause(uint256 projectId, string calldata reason) external onlyRole(SUPERVISOR_ROLE) {
        Project storage p = _inState(projectId, Status.Active);
        _checkText("reason", reason);
        p.status = Status.Paused;
        emit ProjectPaused(projectId, msg.sender, reason);
    }

    /// @notice Supervisor: put a paused project's continuation to a DAO vote (resume if passed).
    function proposeContinuation(uint256 projectId) external onlyRole(SUPERVISOR_ROLE) returns (uint256 governorId) {
        Project storage p = _inState(projectId, Status.Paused);
        if (p.continuationVote != 0) {
            IGovernor.ProposalState s = IGovernor(SystemAddresses.DAO_GOVERNOR).state(p.continuationVote);
            if (
                s == IGovernor.ProposalState.Pending || s == IGovernor.ProposalState.Active
                    || s == IGovernor.ProposalState.Succeeded || s == IGovernor.ProposalState.Queued
            ) revert VoteOpen(projectId, p.continuationVote);
        }
        p.votes += 1;
        (address[] memory t, uint256[] memory v, bytes[] memory c, string memory d) = continuationCall(projectId);
        governorId = IGovernor(SystemAddresses.DAO_GOVERNOR).propose(t, v, c, d);
        p.continuationVote = governorId;
        emit ContinuationProposed(projectId, governorId, msg.sender);
    }

    /// @notice Anyone: close a paused project whose continuation vote was defeated or expired.
    function closeAfterVote(uint256 projectId) external nonReentrant {
        Project storage p = _inState(projectId, Status.Paused);
        uint256 vote = p.continuationVote;
        if (vote == 0) revert NoContinuationVote(projectId);
        IGovernor.ProposalState s = IGovernor(SystemAddresses.DAO_GOVERNOR).state(vote);
        if (s != IGovernor.ProposalState.Defeated && s != IGovernor.ProposalState.Expired) {
            revert VoteNotLost(projectId, vote, s);
        }
        _close(projectId, p, "continuation vote lost");
    }

    /// @notice Supervisor: accept the results (`report`: text or content id), pay the last
    /// milestone and publish the result.
    function accept(uint256 projectId, string calldata report) external onlyRole(SUPERVISOR_ROLE) {
        Project storage p = _inState(projectId, Status.Active);
        uint256[] storage ms = _milestones[projectId];
        if (p.released + 1 != ms.length) revert MilestonesOutstanding(projectId, p.released, ms.length);
        _checkText("report", report);
        uint256 last = ms[ms.length - 1];
        _credit(projectId, p, last);
        p.status = Status.Completed;
        p.closedAt = uint64(block.timestamp);
        p.result = report;
        emit ProjectAccepted(projectId, msg.sender, report, last);
    }

    // ------------------------------------------------------------------ money

    /// @notice Take the milestone payments credited to you.
    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingOwed(msg.sender);
        owed[msg.sender] = 0;
        totalOwed -= amount;
        emit Withdrawn(msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice Project `projectId`'s record.
    function projectOf(uint256 projectId) external view returns (Project memory) {
        return _project(projectId);
    }

    /// @notice Project `projectId`'s milestones (wei each).
    function milestonesOf(uint256 projectId) external view returns (uint256[] memory) {
        _project(projectId);
        return _milestones[projectId];
    }

    /// @notice The published result: whether accepted, the report and when.
    function resultOf(uint256 projectId) external view returns (bool accepted, string memory report, uint64 at) {
        Project storage p = _project(projectId);
        return (p.status == Status.Completed, p.result, p.closedAt);
    }

    /// @notice What the Governor is given for the latest continuation vote (queue/execute too).
    function continuationCall(uint256 projectId)
        public
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas, string memory description)
    {
        _project(projectId);
        targets = new address[](1);
        values = new uint256[](1);
        calldatas = new bytes[](1);
        targets[0] = address(this);
        calldatas[0] = abi.encodeCall(this.resume, (projectId));
        // The vote number keeps descriptions apart when a project is voted on again.
        description = string.concat(
            "PowerVerse DAO: continue project #",
            Strings.toString(projectId),
            " (vote ",
            Strings.toString(_projects[projectId].votes),
            ")"
        );
    }

    // ------------------------------------------------------------------ internals

    function _credit(uint256, Project storage p, uint256 amount) private {
        p.released += 1;
        p.paid += amount;
        totalEscrowed -= amount;
        owed[p.team] += amount;
        totalOwed += amount;
    }

    function _close(uint256 projectId, Project storage p, string memory reason) private {
        uint256 refund = p.budget - p.paid;
        p.status = Status.Cancelled;
        p.closedAt = uint64(block.timestamp);
        p.result = reason;
        totalEscrowed -= refund;
        emit ProjectCancelled(projectId, refund, reason);
        if (refund > 0) _pay(SystemAddresses.DAO_TIMELOCK, refund);
    }

    function _project(uint256 projectId) private view returns (Project storage p) {
        p = _projects[projectId];
        if (p.status == Status.None) revert UnknownProject(projectId);
    }

    function _inState(uint256 projectId, Status expected) private view returns (Project storage p) {
        p = _project(projectId);
        if (p.status != expected) revert ProjectNotInState(projectId, expected, p.status);
    }

    function _checkText(string memory field, string calldata text) private pure {
        uint256 n = bytes(text).length;
        if (n == 0) revert EmptyText(field);
        if (n > MAX_TEXT) revert TextTooLong(field, n, MAX_TEXT);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
