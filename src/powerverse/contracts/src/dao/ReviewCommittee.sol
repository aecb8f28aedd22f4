// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

import {SystemAddresses} from "../SystemAddresses.sol";

/// @title The DAO's proposal review committee, elected by token vote for a term.
/// @notice An election may be opened by anyone once the sitting committee's term ends within
/// `electionPeriod` (or has ended). For `electionPeriod` seconds candidates stand (each must
/// hold at least `minCandidateVotes` vPVC votes at the election's snapshot, one second before it
/// opened) and holders vote for one candidate each with their vPVC votes at that snapshot.
/// Afterwards anyone finalizes it: the `committeeSize` candidates with the most votes (ties to
/// the earlier candidacy) form the new committee, whose term runs `termLength` seconds. An
/// election nobody voted in changes nothing: the sitting committee serves on until a later
/// election succeeds, so proposals can always be reviewed. The DAO (timelock) sets the rules
/// and may replace the committee outright (`setMembers`).
contract ReviewCommittee {
    uint256 public constant MAX_COMMITTEE_SIZE = 21;
    uint256 public constant MAX_CANDIDATES = 32;

    struct Rules {
        uint32 committeeSize;
        uint64 termLength;
        uint64 electionPeriod;
        uint256 minCandidateVotes;
    }

    struct Election {
        uint64 start;
        uint64 end;
        uint48 snapshot;
        bool finalized;
        bool elected;
        address[] candidates;
    }

    Rules public rules;
    address[] private _members;
    mapping(address account => bool) public isMember;
    uint64 public termStart;
    uint64 public termEnd;

    uint256 public electionCount;
    mapping(uint256 electionId => Election) private _elections;
    mapping(uint256 electionId => mapping(address candidate => uint256)) public votesFor;
    mapping(uint256 electionId => mapping(address voter => address)) public voteOf;
    mapping(uint256 electionId => mapping(address candidate => bool)) public isCandidate;

    event RulesUpdated(uint32 committeeSize, uint64 termLength, uint64 electionPeriod, uint256 minCandidateVotes);
    event ElectionOpened(uint256 indexed electionId, uint64 end, uint48 snapshot);
    event CandidateStood(uint256 indexed electionId, address indexed candidate);
    event ElectionVote(uint256 indexed electionId, address indexed voter, address indexed candidate, uint256 weight);
    event ElectionFinalized(uint256 indexed electionId, bool elected, address[] members);
    event CommitteeChanged(address[] members, uint64 termStart, uint64 termEnd);

    error NotTimelock(address caller);
    error InvalidRules(string field);
    error InvalidMembers();
    error ElectionNotDue(uint64 opensAt);
    error ElectionInProgress(uint256 electionId);
    error UnknownElection(uint256 electionId);
    error ElectionClosed(uint256 electionId);
    error ElectionNotOver(uint256 electionId, uint64 end);
    error AlreadyFinalized(uint256 electionId);
    error AlreadyCandidate(uint256 electionId, address candidate);
    error NotCandidate(uint256 electionId, address candidate);
    error TooManyCandidates(uint256 electionId);
    error NotEnoughVotes(address account, uint256 votes, uint256 minimum);
    error AlreadyVoted(uint256 electionId, address voter);
    error NoVotingPower(address voter);

    modifier onlyTimelock() {
        if (msg.sender != SystemAddresses.DAO_TIMELOCK) revert NotTimelock(msg.sender);
        _;
    }

    constructor(address[] memory members_, Rules memory rules_) {
        _setRules(rules_);
        _setMembers(members_, uint64(block.timestamp), uint64(block.timestamp) + rules_.termLength);
    }

    // ------------------------------------------------------------------ views

    /// @notice The sitting committee.
    function members() external view returns (address[] memory) {
        return _members;
    }

    /// @notice Election `electionId`: window, snapshot, outcome and candidates.
    function electionOf(uint256 electionId) external view returns (Election memory) {
        if (electionId == 0 || electionId > electionCount) revert UnknownElection(electionId);
        return _elections[electionId];
    }

    /// @notice When an election may be opened (the term's end minus one election period).
    function electionOpensAt() public view returns (uint64) {
        uint64 period = rules.electionPeriod;
        return termEnd > period ? termEnd - period : 0;
    }

    // ------------------------------------------------------------------ elections

    /// @notice Open the next election (anyone, once due and none is running).
    function openElection() external returns (uint256 electionId) {
        uint256 last = electionCount;
        if (last != 0 && !_elections[last].finalized) revert ElectionInProgress(last);
        uint64 opensAt = electionOpensAt();
        if (block.timestamp < opensAt) revert ElectionNotDue(opensAt);
        electionId = last + 1;
        electionCount = electionId;
        Election storage e = _elections[electionId];
        e.start = uint64(block.timestamp);
        e.end = uint64(block.timestamp) + rules.electionPeriod;
        e.snapshot = uint48(block.timestamp - 1);
        emit ElectionOpened(electionId, e.end, e.snapshot);
    }

    /// @notice Stand as a candidate in the running election.
    function stand(uint256 electionId) external {
        Election storage e = _open(electionId);
        if (isCandidate[electionId][msg.sender]) revert AlreadyCandidate(electionId, msg.sender);
        if (e.candidates.length >= MAX_CANDIDATES) revert TooManyCandidates(electionId);
        uint256 votes = IVotes(SystemAddresses.VOTES_PVC).getPastVotes(msg.sender, e.snapshot);
        if (votes < rules.minCandidateVotes) revert NotEnoughVotes(msg.sender, votes, rules.minCandidateVotes);
        isCandidate[electionId][msg.sender] = true;
        e.candidates.push(msg.sender);
        emit CandidateStood(electionId, msg.sender);
    }

    /// @notice Give all your vPVC votes (at the election's snapshot) to `candidate`, once.
    function vote(uint256 electionId, address candidate) external {
        Election storage e = _open(electionId);
        if (!isCandidate[electionId][candidate]) revert NotCandidate(electionId, candidate);
        if (voteOf[electionId][msg.sender] != address(0)) revert AlreadyVoted(electionId, msg.sender);
        uint256 weight = IVotes(SystemAddresses.VOTES_PVC).getPastVotes(msg.sender, e.snapshot);
        if (weight == 0) revert NoVotingPower(msg.sender);
        voteOf[electionId][msg.sender] = candidate;
        votesFor[electionId][candidate] += weight;
        emit ElectionVote(electionId, msg.sender, candidate, weight);
    }

    /// @notice Count an ended election (anyone): the top `committeeSize` candidates with votes.
    function finalizeElection(uint256 electionId) external returns (bool elected) {
        if (electionId == 0 || electionId > electionCount) revert UnknownElection(electionId);
        Election storage e = _elections[electionId];
        if (e.finalized) revert AlreadyFinalized(electionId);
        if (block.timestamp <= e.end) revert ElectionNotOver(electionId, e.end);
        e.finalized = true;
        address[] memory winners = _top(electionId, e.candidates, rules.committeeSize);
        elected = winners.length > 0;
        e.elected = elected;
        if (elected) {
            _setMembers(winners, uint64(block.timestamp), uint64(block.timestamp) + rules.termLength);
        }
        emit ElectionFinalized(electionId, elected, winners);
    }

    // ------------------------------------------------------------------ governance

    /// @notice DAO: the committee rules.
    function setRules(Rules calldata rules_) external onlyTimelock {
        _setRules(rules_);
    }

    /// @notice DAO: replace the committee, serving until `termEnd_`.
    function setMembers(address[] calldata members_, uint64 termEnd_) external onlyTimelock {
        if (termEnd_ <= block.timestamp) revert InvalidRules("termEnd");
        _setMembers(members_, uint64(block.timestamp), termEnd_);
    }

    // ------------------------------------------------------------------ internals

    function _open(uint256 electionId) private view returns (Election storage e) {
        if (electionId == 0 || electionId > electionCount) revert UnknownElection(electionId);
        e = _elections[electionId];
        if (e.finalized || block.timestamp > e.end) revert ElectionClosed(electionId);
    }

    /// @dev Selection by repeated maximum: at most 32 candidates and 21 seats.
    function _top(uint256 electionId, address[] storage candidates, uint256 seats)
        private
        view
        returns (address[] memory winners)
    {
        uint256 n = candidates.length;
        bool[] memory taken = new bool[](n);
        address[] memory chosen = new address[](seats < n ? seats : n);
        uint256 count;
        for (; count < chosen.length; ++count) {
            uint256 best = type(uint256).max;
            uint256 bestVotes;
            for (uint256 i = 0; i < n; ++i) {
                uint256 v = votesFor[electionId][candidates[i]];
                if (!taken[i] && v > bestVotes) {
                    best = i;
                    bestVotes = v;
                }
            }
            if (best == type(uint256).max) break;
            taken[best] = true;
            chosen[count] = candidates[best];
        }
        winners = new address[](count);
        for (uint256 i = 0; i < count; ++i) winners[i] = chosen[i];
    }

    function _setRules(Rules memory r) private {
        if (r.committeeSize == 0 || r.committeeSize > MAX_COMMITTEE_SIZE) revert InvalidRules("committeeSize");
        if (r.termLength < 1 hours || r.termLength > 3 * 365 days) revert InvalidRules("termLength");
        if (r.electionPeriod == 0 || r.electionPeriod >= r.termLength) revert InvalidRules("electionPeriod");
        rules = r;
        emit RulesUpdated(r.committeeSize, r.termLength, r.electionPeriod, r.minCandidateVotes);
    }

    function _setMembers(address[] memory members_, uint64 start, uint64 end) private {
        if (members_.length == 0 || members_.length > MAX_COMMITTEE_SIZE) revert InvalidMembers();
        for (uint256 i = 0; i < _members.length; ++i) isMember[_members[i]] = false;
        delete _members;
        for (uint256 i = 0; i < members_.length; ++i) {
            address m = members_[i];
            if (m == address(0) || isMember[m]) revert InvalidMembers();
            isMember[m] = true;
            _members.push(m);
        }
        termStart = start;
        termEnd = end;
        emit CommitteeChanged(members_, start, end);
    }
}
