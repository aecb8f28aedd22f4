// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IArbitration} from "./interfaces/IArbitration.sol";
import {IDisputable} from "./interfaces/IDisputable.sol";
import {SystemAddresses} from "./SystemAddresses.sol";

/// @title The arbitration committee (whitepaper 5.1 "仲裁委员会").
/// @notice The escrow holders (SOURCE_ROLE: Market and Orders) open a dispute when a party
/// disputes an order; they keep the escrow frozen. A committee member (ARBITER_ROLE) rules by
/// splitting the escrow — `consumerShare` wei back to the consumer, the rest to the provider
/// (minus the source's platform fee) — which calls back `IDisputable(source).resolveDispute`;
/// or escalates the dispute to a DAO vote, after which only GOVERNANCE_ROLE (the DAO, later)
/// rules. Every ruling carries a reason in its event; a dispute is ruled exactly once. The
/// parties and the committee may attach evidence (content ids) while it is open.
contract Arbitration is AccessControl, IArbitration {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 public constant SOURCE_ROLE = keccak256("SOURCE_ROLE");

    uint256 public constant MAX_TEXT_LENGTH = 512;

    enum Status {
        None,
        Open,
        Escalated,
        Ruled
    }

    struct Dispute {
        address source;
        Status status;
        bool byDao;
        uint64 openedAt;
        address consumer;
        uint64 ruledAt;
        address provider;
        address ruledBy;
        uint256 sourceId;
        uint256 amount;
        uint256 consumerShare;
        string reason;
    }

    uint256 public disputeCount;
    mapping(uint256 disputeId => Dispute) private _disputes;
    /// @notice The latest dispute over order `id` of `source` (0 when none).
    mapping(address source => mapping(uint256 id => uint256 disputeId)) public disputeIdOf;

    event DisputeOpened(
        uint256 indexed disputeId,
        address indexed source,
        uint256 indexed sourceId,
        address consumer,
        address provider,
        uint256 amount,
        string reason
    );
    event EvidenceSubmitted(uint256 indexed disputeId, address indexed by, string evidence);
    event DisputeEscalated(uint256 indexed disputeId, address indexed by, string reason);
    event DisputeRuled(
        uint256 indexed disputeId,
        address indexed by,
        uint256 consumerShare,
        uint256 providerShare,
        bool byDao,
        string reason
    );

    error ZeroAccount();
    error NotSource(address caller);
    error SourceMismatch(address caller, address source);
    error UnknownDispute(uint256 disputeId);
    error AlreadyRuled(uint256 disputeId);
    error AlreadyEscalated(uint256 disputeId);
    error NotArbiter(address caller);
    error NotGovernance(address caller);
    error NotParty(uint256 disputeId, address caller);
    error ShareExceedsAmount(uint256 disputeId, uint256 share, uint256 amount);
    error EmptyText(string field);
    error TextTooLong(string field, uint256 length, uint256 max);

    /// @param foundation receives DEFAULT_ADMIN_ROLE, GOVERNANCE_ROLE and ARBITER_ROLE;
    /// SOURCE_ROLE goes to SystemAddresses.MARKET and SystemAddresses.ORDERS.
    constructor(address foundation) {
        if (foundation == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, foundation);
        _grantRole(GOVERNANCE_ROLE, foundation);
        _grantRole(ARBITER_ROLE, foundation);
        _grantRole(SOURCE_ROLE, SystemAddresses.MARKET);
        _grantRole(SOURCE_ROLE, SystemAddresses.ORDERS);
    }

    /// @inheritdoc IArbitration
    function openDispute(
        address source,
        uint256 id,
        address consumer,
        address provider,
        uint256 amount,
        string calldata reason
    ) external returns (uint256 disputeId) {
        if (!hasRole(SOURCE_ROLE, msg.sender)) revert NotSource(msg.sender);
        if (source != msg.sender) revert SourceMismatch(msg.sender, source);
        if (consumer == address(0) || provider == address(0)) revert ZeroAccount();
        _checkLength("reason", reason);
        disputeId = ++disputeCount;
        Dispute storage d = _disputes[disputeId];
        d.source = source;
        d.status = Status.Open;
        d.openedAt = uint64(block.timestamp);
        d.consumer = consumer;
        d.provider = provider;
        d.sourceId = id;
        d.amount = amount;
        d.reason = reason;
        disputeIdOf[source][id] = disputeId;
        emit DisputeOpened(disputeId, source, id, consumer, provider, amount, reason);
    }

    /// @notice Attach evidence (a content id or text) to an unruled dispute: the parties and
    /// the committee only.
    function submitEvidence(uint256 disputeId, string calldata evidence) external {
        Dispute storage d = _dispute(disputeId);
        if (d.status == Status.Ruled) revert AlreadyRuled(disputeId);
        if (msg.sender != d.consumer && msg.sender != d.provider && !hasRole(ARBITER_ROLE, msg.sender)) {
            revert NotParty(disputeId, msg.sender);
        }
        _checkText("evidence", evidence);
        emit EvidenceSubmitted(disputeId, msg.sender, evidence);
    }

    /// @notice Rule on `disputeId`: `consumerShare` wei of the frozen escrow back to the
    /// consumer, the rest to the provider. ARBITER_ROLE while open; GOVERNANCE_ROLE (the DAO)
    /// once escalated. Calls back the source, which pays out.
    function rule(uint256 disputeId, uint256 consumerShare, string calldata reason) external {
        Dispute storage d = _dispute(disputeId);
        Status status = d.status;
        if (status == Status.Ruled) revert AlreadyRuled(disputeId);
        bool byDao = status == Status.Escalated;
        if (byDao) {
            if (!hasRole(GOVERNANCE_ROLE, msg.sender)) revert NotGovernance(msg.sender);
        } else if (!hasRole(ARBITER_ROLE, msg.sender)) {
            revert NotArbiter(msg.sender);
        }
        _checkText("reason", reason);
        uint256 amount = d.amount;
        if (consumerShare > amount) revert ShareExceedsAmount(disputeId, consumerShare, amount);
        d.status = Status.Ruled;
        d.byDao = byDao;
        d.consumerShare = consumerShare;
        d.ruledBy = msg.sender;
        d.ruledAt = uint64(block.timestamp);
        emit DisputeRuled(disputeId, msg.sender, consumerShare, amount - consumerShare, byDao, reason);
        IDisputable(d.source).resolveDispute(d.sourceId, consumerShare);
    }

    /// @notice ARBITER_ROLE: hand an open dispute to a DAO vote; from now on only
    /// GOVERNANCE_ROLE rules on it.
    function escalate(uint256 disputeId, string calldata reason) external {
        if (!hasRole(ARBITER_ROLE, msg.sender)) revert NotArbiter(msg.sender);
        Dispute storage d = _dispute(disputeId);
        if (d.status == Status.Ruled) revert AlreadyRuled(disputeId);
        if (d.status == Status.Escalated) revert AlreadyEscalated(disputeId);
        _checkText("reason", reason);
        d.status = Status.Escalated;
        emit DisputeEscalated(disputeId, msg.sender, reason);
    }

    /// @notice Dispute `disputeId` (status None when unknown).
    function disputeOf(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    function _dispute(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.status == Status.None) revert UnknownDispute(disputeId);
    }

    function _checkText(string memory field, string calldata text) private pure {
        if (bytes(text).length == 0) revert EmptyText(field);
        _checkLength(field, text);
    }

    function _checkLength(string memory field, string calldata text) private pure {
        if (bytes(text).length > MAX_TEXT_LENGTH) revert TextTooLong(field, bytes(text).length, MAX_TEXT_LENGTH);
    }
}
