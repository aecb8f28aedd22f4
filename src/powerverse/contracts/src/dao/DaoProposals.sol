// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {Arbitration} from "../Arbitration.sol";
import {SystemAddresses} from "../SystemAddresses.sol";
import {DaoProjects} from "./DaoProjects.sol";
import {ReviewCommittee} from "./ReviewCommittee.sol";

/// @title PowerVerse DAO proposals: submission with a deposit, committee review, then the vote.
/// @notice Any member submits a proposal (whitepaper 7.1): title, background, goals, plan,
/// expected benefits, resources (each text or a content id, size-limited), optional on-chain
/// actions run by the DAO timelock, and optionally a budget paid from the treasury to an
/// execution team in milestones (DaoProjects). The submitter locks `proposalDeposit` PVC.
/// Review committee members score it (0-100) and give a verdict (approve, reject, spam) within
/// `reviewWindow` seconds; then anyone finalizes the review:
///   - spam, when more than half of the reviews say so: the deposit goes to the treasury;
///   - approved, with at least `minReviews` reviews, more than half approving and an average
///     score of at least `minScore`: the proposal goes to the vote (DaoGovernor);
///   - rejected otherwise.
/// Except for spam the deposit is returned (pull payment: `withdraw`).
/// Arbiters put an escalated dispute's ruling to the vote directly (`proposeRuling`); the
/// timelock then calls Arbitration.rule, which pays out in the market.
contract DaoProposals is ReentrancyGuard {
    uint256 public constant MAX_TITLE = 200;
    uint256 public constant MAX_TEXT = 2048;
    uint256 public constant MAX_ACTIONS = 10;
    uint256 public constant MAX_MILESTONES = 12;
    uint8 public constant MAX_SCORE = 100;
    uint32 public constant MAX_REVIEWS = 21; // ReviewCommittee.MAX_COMMITTEE_SIZE

    enum Kind {
        Regular,
        Ruling
    }

    enum Status {
        None,
        Review,
        Rejected,
        Spam,
        Voting
    }

    enum Verdict {
        Approve,
        Reject,
        Spam
    }

    struct Content {
        string title;
        string background;
        string goals;
        string plan;
        string benefits;
        string resources;
    }

    struct Action {
        address target;
        uint256 value;
        bytes data;
    }

    struct Proposal {
        address proposer;
        Kind kind;
        Status status;
        uint64 createdAt;
        uint64 reviewEnd;
        uint32 reviews;
        uint32 approvals;
        uint32 spamVotes;
        uint32 scoreSum;
        address team;
        uint256 deposit;
        uint256 budget;
        uint256 governorId;
    }

    struct Review {
        bool done;
        Verdict verdict;
        uint8 score;
        string note;
    }

    struct Params {
        uint256 proposalDeposit;
        uint64 reviewWindow;
        uint32 minReviews;
        uint8 minScore;
    }

    Params public params;
    uint256 public proposalCount;
    mapping(uint256 id => Proposal) private _proposals;
    mapping(uint256 id => Content) private _content;
    mapping(uint256 id => Action[]) private _actions;
    mapping(uint256 id => uint256[]) private _milestones;
    mapping(uint256 id => mapping(address member => Review)) private _reviews;
    /// @notice Deposits returned and not yet withdrawn, per account.
    mapping(address account => uint256) public owed;
    uint256 public totalHeld;
    uint256 public totalOwed;

    event Proposed(uint256 indexed id, address indexed proposer, string title, uint256 deposit, uint256 budget, uint64 reviewEnd);
    event Reviewed(uint256 indexed id, address indexed member, Verdict verdict, uint8 score, string note);
    event ReviewFinalized(uint256 indexed id, Status status, uint32 reviews, uint32 approvals, uint32 spamVotes, uint32 scoreSum);
    event PutToVote(uint256 indexed id, uint256 indexed governorId);
    event RulingProposed(uint256 indexed id, uint256 indexed disputeId, uint256 consumerShare, uint256 governorId);
    event ParamsUpdated(uint256 proposalDeposit, uint64 reviewWindow, uint32 minReviews, uint8 minScore);
    event Withdrawn(address indexed account, uint256 amount);

    error NotTimelock(address caller);
    error NotMember(address caller);
    error NotArbiter(address caller);
    error WrongDeposit(uint256 sent, uint256 required);
    error EmptyText(string field);
    error TextTooLong(string field, uint256 length, uint256 max);
    error TooManyActions(uint256 count, uint256 max);
    error InvalidMilestones();
    error ZeroAccount();
    error UnknownProposal(uint256 id);
    error ProposalNotInState(uint256 id, Status expected, Status actual);
    error ReviewWindowClosed(uint256 id, uint64 reviewEnd);
    error ReviewWindowOpen(uint256 id, uint64 reviewEnd);
    error AlreadyReviewed(uint256 id, address member);
    error ScoreOutOfRange(uint8 score);
    error DisputeNotEscalated(uint256 disputeId);
    error InvalidParams(string field);
    error NothingOwed(address account);
    error TransferFailed(address to, uint256 amount);

    modifier onlyTimelock() {
        if (msg.sender != SystemAddresses.DAO_TIMELOCK) revert NotTimelock(msg.sender);
        _;
    }

    constructor(Params memory params_) {
        _setParams(params_);
    }

    // ------------------------------------------------------------------ submission

    /// @notice Submit a proposal; msg.value must be the deposit. `milestones` (wei each, the
    /// last paid on acceptance) fund `team` from the treasury; empty for no project.
    function propose(
        Content calldata content,
        Action[] calldata actions,
        address team,
        uint256[] calldata milestones
    ) external payable nonReentrant returns (uint256 id) {
        if (msg.value != params.proposalDeposit) revert WrongDeposit(msg.value, params.proposalDeposit);
        _checkText("title", content.title, MAX_TITLE, true);
        _checkText("background", content.background, MAX_TEXT, true);
        _checkText("goals", content.goals, MAX_TEXT, true);
        _checkText("plan", content.plan, MAX_TEXT, true);
        _checkText("benefits", content.benefits, MAX_TEXT, false);
        _checkText("resources", content.resources, MAX_TEXT, false);
        if (actions.length > MAX_ACTIONS) revert TooManyActions(actions.length, MAX_ACTIONS);
        uint256 budget;
        if (milestones.length > 0) {
            if (team == address(0)) revert ZeroAccount();
            if (milestones.length > MAX_MILESTONES) revert InvalidMilestones();
            for (uint256 i = 0; i < milestones.length; ++i) {
                if (milestones[i] == 0) revert InvalidMilestones();
                budget += milestones[i];
            }
        } else if (team != address(0)) {
            revert InvalidMilestones();
        }
        id = ++proposalCount;
        Proposal storage p = _proposals[id];
        p.proposer = msg.sender;
        p.status = Status.Review;
        p.createdAt = uint64(block.timestamp);
        p.reviewEnd = uint64(block.timestamp) + params.reviewWindow;
        p.team = team;
        p.deposit = msg.value;
        p.budget = budget;
        totalHeld += msg.value;
        _content[id] = content;
        for (uint256 i = 0; i < actions.length; ++i) {
            _actions[id].push(Action(actions[i].target, actions[i].value, actions[i].data));
        }
        _milestones[id] = milestones;
        emit Proposed(id, msg.sender, content.title, msg.value, budget, p.reviewEnd);
    }

    // ------------------------------------------------------------------ review

    /// @notice A review committee member's score (0-100) and verdict, once, within the window.
    function review(uint256 id, Verdict verdict, uint8 score, string calldata note) external {
        if (!ReviewCommittee(SystemAddresses.REVIEW_COMMITTEE).isMember(msg.sender)) revert NotMember(msg.sender);
        Proposal storage p = _inState(id, Status.Review);
        if (block.timestamp > p.reviewEnd) revert ReviewWindowClosed(id, p.reviewEnd);
        if (score > MAX_SCORE) revert ScoreOutOfRange(score);
        _checkText("note", note, MAX_TEXT, false);
        Review storage r = _reviews[id][msg.sender];
        if (r.done) revert AlreadyReviewed(id, msg.sender);
        r.done = true;
        r.verdict = verdict;
        r.score = score;
        r.note = note;
        p.reviews += 1;
        p.scoreSum += score;
        if (verdict == Verdict.Approve) p.approvals += 1;
        if (verdict == Verdict.Spam) p.spamVotes += 1;
        emit Reviewed(id, msg.sender, verdict, score, note);
    }

    /// @notice Decide a review (anyone): after the window, or once every member reviewed.
    function finalizeReview(uint256 id) external nonReentrant returns (Status status) {
        Proposal storage p = _inState(id, Status.Review);
        uint256 seats = ReviewCommittee(SystemAddresses.REVIEW_COMMITTEE).members().length;
        if (block.timestamp <= p.reviewEnd && p.reviews < seats) revert ReviewWindowOpen(id, p.reviewEnd);
        uint256 deposit = p.deposit;
        totalHeld -= deposit;
        if (p.reviews > 0 && uint256(p.spamVotes) * 2 > p.reviews) {
            status = Status.Spam;
        } else if (
            p.reviews >= params.minReviews && uint256(p.approvals) * 2 > p.reviews
                && p.scoreSum >= uint256(params.minScore) * p.reviews
        ) {
            status = Status.Voting;
        } else {
            status = Status.Rejected;
        }
        p.status = status;
        emit ReviewFinalized(id, status, p.reviews, p.approvals, p.spamVotes, p.scoreSum);
        if (status == Status.Spam) {
            _pay(SystemAddresses.DAO_TIMELOCK, deposit);
        } else {
            owed[p.proposer] += deposit;
            totalOwed += deposit;
        }
        if (status == Status.Voting) {
            p.governorId = _putToVote(id);
            emit PutToVote(id, p.governorId);
        }
    }

    // ------------------------------------------------------------------ escalated disputes

    /// @notice An arbiter puts the ruling of an escalated dispute to the vote (no review):
    /// if it passes, the timelock calls Arbitration.rule(disputeId, consumerShare, reason).
    function proposeRuling(uint256 disputeId, uint256 consumerShare, string calldata reason)
        external
        nonReentrant
        returns (uint256 id)
    {
        Arbitration arb = Arbitration(SystemAddresses.ARBITRATION);
        if (!arb.hasRole(arb.ARBITER_ROLE(), msg.sender)) revert NotArbiter(msg.sender);
        if (arb.disputeOf(disputeId).status != Arbitration.Status.Escalated) revert DisputeNotEscalated(disputeId);
        _checkText("reason", reason, 512, true);
        id = ++proposalCount;
        Proposal storage p = _proposals[id];
        p.proposer = msg.sender;
        p.kind = Kind.Ruling;
        p.status = Status.Voting;
        p.createdAt = uint64(block.timestamp);
        p.reviewEnd = uint64(block.timestamp);
        string memory title = string.concat("Ruling on escalated dispute #", Strings.toString(disputeId));
        _content[id].title = title;
        _content[id].background = reason;
        _actions[id].push(
            Action(SystemAddresses.ARBITRATION, 0, abi.encodeCall(Arbitration.rule, (disputeId, consumerShare, reason)))
        );
        emit Proposed(id, msg.sender, title, 0, 0, p.reviewEnd);
        p.governorId = _putToVote(id);
        emit RulingProposed(id, disputeId, consumerShare, p.governorId);
        emit PutToVote(id, p.governorId);
    }

    // ------------------------------------------------------------------ money

    /// @notice Take back your returned deposits.
    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingOwed(msg.sender);
        owed[msg.sender] = 0;
        totalOwed -= amount;
        emit Withdrawn(msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ------------------------------------------------------------------ governance

    /// @notice DAO: deposit, review window, minimum reviews and minimum average score.
    function setParams(Params calldata params_) external onlyTimelock {
        _setParams(params_);
    }

    // ------------------------------------------------------------------ views

    /// @notice Proposal `id`'s record.
    function proposalOf(uint256 id) external view returns (Proposal memory) {
        return _proposal(id);
    }

    /// @notice Proposal `id`'s texts.
    function contentOf(uint256 id) external view returns (Content memory) {
        _proposal(id);
        return _content[id];
    }

    /// @notice Proposal `id`'s on-chain actions and milestones (wei).
    function planOf(uint256 id) external view returns (Action[] memory actions, uint256[] memory milestones) {
        _proposal(id);
        return (_actions[id], _milestones[id]);
    }

    /// @notice `member`'s review of proposal `id`.
    function reviewOf(uint256 id, address member) external view returns (Review memory) {
        _proposal(id);
        return _reviews[id][member];
    }

    /// @notice What the Governor is given for proposal `id` (also what queue/execute need).
    function governorCall(uint256 id)
        public
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas, string memory description)
    {
        Proposal storage p = _proposal(id);
        Action[] storage actions = _actions[id];
        uint256 n = actions.length + (p.budget > 0 ? 1 : 0);
        targets = new address[](n);
        values = new uint256[](n);
        calldatas = new bytes[](n);
        for (uint256 i = 0; i < actions.length; ++i) {
            targets[i] = actions[i].target;
            values[i] = actions[i].value;
            calldatas[i] = actions[i].data;
        }
        if (p.budget > 0) {
            targets[n - 1] = SystemAddresses.DAO_PROJECTS;
            values[n - 1] = p.budget;
            calldatas[n - 1] = abi.encodeCall(DaoProjects.create, (id, p.team, _milestones[id]));
        }
        if (n == 0) {
            // The Governor needs one call: a no-op read of this proposal, for text-only proposals.
            targets = new address[](1);
            values = new uint256[](1);
            calldatas = new bytes[](1);
            targets[0] = address(this);
            calldatas[0] = abi.encodeCall(this.proposalOf, (id));
        }
        description = string.concat("PowerVerse DAO proposal #", Strings.toString(id), ": ", _content[id].title);
    }

    // ------------------------------------------------------------------ internals

    function _putToVote(uint256 id) private returns (uint256) {
        (address[] memory t, uint256[] memory v, bytes[] memory c, string memory d) = governorCall(id);
        return IGovernor(SystemAddresses.DAO_GOVERNOR).propose(t, v, c, d);
    }

    function _proposal(uint256 id) private view returns (Proposal storage p) {
        p = _proposals[id];
        if (p.status == Status.None) revert UnknownProposal(id);
    }

    function _inState(uint256 id, Status expected) private view returns (Proposal storage p) {
        p = _proposal(id);
        if (p.status != expected) revert ProposalNotInState(id, expected, p.status);
    }

    function _setParams(Params memory q) private {
        if (q.reviewWindow < 60 || q.reviewWindow > 90 days) revert InvalidParams("reviewWindow");
        if (q.minReviews == 0 || q.minReviews > MAX_REVIEWS) revert InvalidParams("minReviews");
        if (q.minScore > MAX_SCORE) revert InvalidParams("minScore");
        params = q;
        emit ParamsUpdated(q.proposalDeposit, q.reviewWindow, q.minReviews, q.minScore);
    }

    function _checkText(string memory field, string calldata text, uint256 max, bool required) private pure {
        uint256 n = bytes(text).length;
        if (required && n == 0) revert EmptyText(field);
        if (n > max) revert TextTooLong(field, n, max);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
