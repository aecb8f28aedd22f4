// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IPlatformAdmin} from "./interfaces/IPlatformAdmin.sol";
import {IReputation} from "./interfaces/IReputation.sol";
import {SystemAddresses} from "./SystemAddresses.sol";

/// @title Reviews and reputation (whitepaper 5 "用户评价与信誉体系").
/// @notice The markets (RECORDER_ROLE: Market and Orders) record every order that ended with
/// two parties under an order key (`keccak256(abi.encode(marketContract, orderId))`). Each
/// party may then review the other once: quality, service and efficiency, 1 to 5 stars each,
/// with an optional comment content id.
///
/// Reputation is a Bayesian average in SCALE units per star (0..50,000 = 0.0000..5.0000 stars):
///
///   reputation = (priorMean × priorWeight + Σ reviewScore + failurePenalty)
///                / (priorWeight + reviews + failures × failureWeight)
///
/// where a review's score is the mean of its three ratings (in SCALE units) and each failed
/// delivery (`recordFailure`, a task deadline missed) counts as `failureWeight` one-star
/// reviews. An account with no reviews sits at the prior mean (dev default 3.5 stars with the
/// weight of 5 reviews), so new accounts can trade; a few one-star reviews or failures bring
/// it down gradually. Sums are stored, the average is computed on read, so a governance change
/// of the prior applies to everyone at once. Markets refuse listing, renting and taking tasks to
/// accounts whose reputation is below `minReputation` (0 disables the gate).
contract Reputation is AccessControl, IReputation {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");

    /// @notice Fixed-point units per star: 10,000 = 1.0000 star.
    uint256 public constant SCALE = 10_000;
    uint8 public constant MIN_RATING = 1;
    uint8 public constant MAX_RATING = 5;
    uint256 public constant MAX_SCORE = MAX_RATING * SCALE;
    uint256 public constant MAX_PRIOR_WEIGHT = 1_000;
    uint256 public constant MAX_FAILURE_WEIGHT = 100;
    uint256 public constant MAX_COMMENT_LENGTH = 256;

    /// @notice One recorded order: its parties and who has reviewed whom.
    struct OrderRecord {
        address consumer;
        uint64 recordedAt;
        address provider;
        bool consumerReviewed;
        bool providerReviewed;
        bool failed;
        address recorder;
    }

    /// @notice One review; `at` is 0 when none was given.
    struct Review {
        address reviewee;
        uint8 quality;
        uint8 service;
        uint8 efficiency;
        uint64 at;
        string comment;
    }

    /// @notice Counts and rating sums of one account (as reviewee unless noted).
    /// `orders`: orders recorded with it as a party; `reviewsGiven`: reviews it wrote;
    /// `failures`: failed deliveries (missed task deadlines).
    struct Stats {
        uint64 orders;
        uint64 reviewsReceived;
        uint64 reviewsGiven;
        uint64 failures;
        uint64 qualitySum;
        uint64 serviceSum;
        uint64 efficiencySum;
    }

    /// @notice The prior and the failure penalty; `priorMean` in SCALE units.
    struct Params {
        uint32 priorMean;
        uint32 priorWeight;
        uint32 failureWeight;
    }

    Params private _params;
    uint256 public minReputation;

    mapping(bytes32 orderKey => OrderRecord) private _orders;
    mapping(bytes32 orderKey => mapping(address reviewer => Review)) private _reviews;
    mapping(address account => Stats) private _stats;

    event OrderRecorded(bytes32 indexed orderKey, address indexed consumer, address indexed provider, address recorder);
    event Reviewed(
        bytes32 indexed orderKey,
        address indexed reviewer,
        address indexed reviewee,
        uint8 quality,
        uint8 service,
        uint8 efficiency,
        string comment,
        uint256 newReputation
    );
    event FailureRecorded(bytes32 indexed orderKey, address indexed provider, uint256 newReputation);
    event MinReputationUpdated(uint256 oldValue, uint256 newValue);
    event ParamsUpdated(uint32 priorMean, uint32 priorWeight, uint32 failureWeight);

    error ZeroAccount();
    error SelfOrder(address account);
    error OrderAlreadyRecorded(bytes32 orderKey);
    error UnknownOrder(bytes32 orderKey);
    error NotOrderParty(bytes32 orderKey, address caller);
    error AlreadyReviewed(bytes32 orderKey, address reviewer);
    error RatingOutOfRange(string field, uint8 value);
    error CommentTooLong(uint256 length, uint256 max);
    error AccountBlacklisted(address account);
    error FailureAlreadyRecorded(bytes32 orderKey);
    error NotOrderProvider(bytes32 orderKey, address provider);
    error InvalidMinReputation(uint256 value, uint256 max);
    error InvalidParams(string field);

    /// @param foundation receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE; RECORDER_ROLE goes to
    /// SystemAddresses.MARKET and SystemAddresses.ORDERS.
    constructor(
        address foundation,
        uint256 minReputation_,
        uint32 priorMean,
        uint32 priorWeight,
        uint32 failureWeight
    ) {
        if (foundation == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, foundation);
        _grantRole(GOVERNANCE_ROLE, foundation);
        _grantRole(RECORDER_ROLE, SystemAddresses.MARKET);
        _grantRole(RECORDER_ROLE, SystemAddresses.ORDERS);
        _setParams(priorMean, priorWeight, failureWeight);
        _setMinReputation(minReputation_);
    }

    // ------------------------------------------------------------------ recorders

    /// @inheritdoc IReputation
    /// @dev Refuses a key recorded before, a zero party and an order with itself.
    function recordOrder(bytes32 orderKey, address consumer, address provider) external onlyRole(RECORDER_ROLE) {
        if (consumer == address(0) || provider == address(0)) revert ZeroAccount();
        if (consumer == provider) revert SelfOrder(consumer);
        OrderRecord storage o = _orders[orderKey];
        if (o.consumer != address(0)) revert OrderAlreadyRecorded(orderKey);
        o.consumer = consumer;
        o.provider = provider;
        o.recordedAt = uint64(block.timestamp);
        o.recorder = msg.sender;
        _stats[consumer].orders += 1;
        _stats[provider].orders += 1;
        emit OrderRecorded(orderKey, consumer, provider, msg.sender);
    }

    /// @notice Penalise `provider` for a failed delivery of order `orderKey` (a task deadline
    /// passed without a result): counts as `failureWeight` one-star reviews. Once per order;
    /// when the order is recorded, `provider` must be its provider.
    function recordFailure(address provider, bytes32 orderKey) external onlyRole(RECORDER_ROLE) {
        if (provider == address(0)) revert ZeroAccount();
        OrderRecord storage o = _orders[orderKey];
        if (o.failed) revert FailureAlreadyRecorded(orderKey);
        if (o.provider != address(0) && o.provider != provider) revert NotOrderProvider(orderKey, provider);
        o.failed = true;
        _stats[provider].failures += 1;
        emit FailureRecorded(orderKey, provider, reputationOf(provider));
    }

    // ------------------------------------------------------------------ parties

    /// @notice Review the other party of recorded order `orderKey` (once per side). Ratings are
    /// 1..5; `comment` is an optional content id (at most MAX_COMMENT_LENGTH bytes).
    function review(bytes32 orderKey, uint8 quality, uint8 service, uint8 efficiency, string calldata comment)
        external
    {
        OrderRecord storage o = _orders[orderKey];
        if (o.consumer == address(0)) revert UnknownOrder(orderKey);
        address reviewee;
        if (msg.sender == o.consumer) {
            if (o.consumerReviewed) revert AlreadyReviewed(orderKey, msg.sender);
            o.consumerReviewed = true;
            reviewee = o.provider;
        } else if (msg.sender == o.provider) {
            if (o.providerReviewed) revert AlreadyReviewed(orderKey, msg.sender);
            o.providerReviewed = true;
            reviewee = o.consumer;
        } else {
            revert NotOrderParty(orderKey, msg.sender);
        }
        _checkRating("quality", quality);
        _checkRating("service", service);
        _checkRating("efficiency", efficiency);
        if (bytes(comment).length > MAX_COMMENT_LENGTH) {
            revert CommentTooLong(bytes(comment).length, MAX_COMMENT_LENGTH);
        }
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).isBlacklisted(msg.sender)) {
            revert AccountBlacklisted(msg.sender);
        }
        _reviews[orderKey][msg.sender] = Review(reviewee, quality, service, efficiency, uint64(block.timestamp), comment);
        Stats storage s = _stats[reviewee];
        s.reviewsReceived += 1;
        s.qualitySum += quality;
        s.serviceSum += service;
        s.efficiencySum += efficiency;
        _stats[msg.sender].reviewsGiven += 1;
        emit Reviewed(orderKey, msg.sender, reviewee, quality, service, efficiency, comment, reputationOf(reviewee));
    }

    // ------------------------------------------------------------------ governance

    /// @notice Accounts below `value` (SCALE units, at most MAX_SCORE; 0 = no gate) may not list,
    /// rent or take tasks.
    function setMinReputation(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setMinReputation(value);
    }

    /// @notice Replace the prior (mean in SCALE units, weight in reviews) and the number of
    /// one-star reviews a failed delivery counts as. Applies to every account at once.
    function setParams(uint32 priorMean, uint32 priorWeight, uint32 failureWeight)
        external
        onlyRole(GOVERNANCE_ROLE)
    {
        _setParams(priorMean, priorWeight, failureWeight);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IReputation
    /// @dev SCALE units per star (0..MAX_SCORE); the prior mean for an account never reviewed.
    function reputationOf(address account) public view returns (uint256) {
        Stats storage s = _stats[account];
        Params memory p = _params;
        uint256 failed = uint256(s.failures) * p.failureWeight;
        // Ratings are summed over three axes: a review's score is (q + s + e) × SCALE / 3.
        uint256 ratings = uint256(s.qualitySum) + s.serviceSum + s.efficiencySum + failed * 3 * MIN_RATING;
        uint256 weight = uint256(p.priorWeight) + s.reviewsReceived + failed;
        return (uint256(p.priorMean) * p.priorWeight * 3 + ratings * SCALE) / (weight * 3);
    }

    /// @notice Counts and rating sums of `account`.
    function statsOf(address account) external view returns (Stats memory) {
        return _stats[account];
    }

    /// @notice The parties and review flags of order `orderKey` (zero consumer when unknown).
    function orderOf(bytes32 orderKey) external view returns (OrderRecord memory) {
        return _orders[orderKey];
    }

    /// @notice The review `reviewer` gave on order `orderKey` (`at` = 0 when none).
    function reviewOf(bytes32 orderKey, address reviewer) external view returns (Review memory) {
        return _reviews[orderKey][reviewer];
    }

    /// @notice The prior and the failure weight.
    function params() external view returns (Params memory) {
        return _params;
    }

    // ------------------------------------------------------------------ internals

    function _checkRating(string memory field, uint8 value) private pure {
        if (value < MIN_RATING || value > MAX_RATING) revert RatingOutOfRange(field, value);
    }

    function _setMinReputation(uint256 value) private {
        if (value > MAX_SCORE) revert InvalidMinReputation(value, MAX_SCORE);
        emit MinReputationUpdated(minReputation, value);
        minReputation = value;
    }

    function _setParams(uint32 priorMean, uint32 priorWeight, uint32 failureWeight) private {
        if (priorMean < MIN_RATING * SCALE || priorMean > MAX_SCORE) revert InvalidParams("priorMean");
        if (priorWeight == 0 || priorWeight > MAX_PRIOR_WEIGHT) revert InvalidParams("priorWeight");
        if (failureWeight > MAX_FAILURE_WEIGHT) revert InvalidParams("failureWeight");
        _params = Params(priorMean, priorWeight, failureWeight);
        emit ParamsUpdated(priorMean, priorWeight, failureWeight);
    }
}
