// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IArbitration} from "./interfaces/IArbitration.sol";
import {IDisputable} from "./interfaces/IDisputable.sol";
import {IPlatformAdmin} from "./interfaces/IPlatformAdmin.sol";
import {IReputation} from "./interfaces/IReputation.sol";
import {ResourceNFT} from "./ResourceNFT.sol";
import {SystemAddresses} from "./SystemAddresses.sol";

/// @title Demand orders (whitepaper 5.3.2): rental-type demands and task orders, escrowed in PVC.
/// @notice Demand (rental type): the consumer posts minimum specs, a period in days and an
/// optional region, paying the budget into escrow; the order is open until `deadline`. A
/// provider fills it with a verified resource it owns that meets the specs, at a price per day
/// with price × days ≤ budget: the difference is credited back to the consumer at once, the
/// resource is marked rented (held by this contract) and the rental runs from the fill for
/// `periodDays` days (filling is the provider's confirmation). At its end anyone may `settle`:
/// the provider is credited the rent minus the platform fee. Either party may dispute before
/// the end. Unfilled demands can be cancelled by the consumer, and expire (`expire`, anyone).
///
/// Task: the consumer posts a task spec content id, resource requirements, a deadline and an
/// acceptance method, paying the reward into escrow. A provider takes it with a matching
/// resource (marked rented until the task closes) and submits the result content id and hash
/// by the deadline. MANUAL: the consumer accepts (reward minus fee to the provider) or, within
/// the review window, rejects (a dispute in Arbitration); after the window anyone may
/// `autoAccept`. HASH: a submission whose hash equals the expected hash is accepted at once;
/// a different hash is refused (the provider may resubmit until the deadline). Past the deadline
/// without a result anyone may `expire`: the consumer is refunded and the provider's reputation
/// drops (Reputation.recordFailure).
///
/// Providers (fill, take) and consumers (post) need a reputation of at least
/// Reputation.minReputation; PlatformAdmin's pause stops new orders, fills and takes; frozen or
/// blacklisted accounts and resources are refused. Pull payments: the contract's balance equals
/// `totalEscrowed + totalOwed`; `withdraw` is never blocked.
contract Orders is AccessControl, ReentrancyGuardTransient, IDisputable {
    using SafeCast for uint256;

    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    uint256 public constant DAY = 1 days;
    uint256 public constant BPS = 10_000;
    uint16 public constant MAX_FEE_BPS = 3_000;
    uint64 public constant MAX_OPEN_PERIOD = 90 days;
    uint64 public constant MAX_REVIEW_WINDOW = 30 days;
    uint32 public constant MAX_PERIOD_DAYS = 366;
    uint256 public constant MAX_TEXT_LENGTH = 256;
    uint256 public constant MAX_REASON_LENGTH = 512;
    /// @notice Gas given to each Reputation call (recordOrder, recordFailure).
    uint256 public constant REPUTATION_GAS = 200_000;

    ResourceNFT public constant NFT = ResourceNFT(SystemAddresses.RESOURCE_NFT);

    enum Kind {
        None,
        Demand,
        Task
    }

    enum Acceptance {
        Manual,
        Hash
    }

    /// @notice Open → (Demand) Active → Completed | Disputed → Resolved;
    /// Open → (Task) Taken → Submitted → Completed | Disputed → Resolved; Taken → Failed;
    /// Open → Cancelled | Expired. Completed is paid, Cancelled/Expired/Failed refunded.
    enum State {
        None,
        Open,
        Active,
        Taken,
        Submitted,
        Completed,
        Cancelled,
        Expired,
        Failed,
        Disputed,
        Resolved
    }

    /// @notice Minimum resource requirements (ResourceNFT units: MHz, MiB, GB). `gpuMemory` is
    /// per card; `diskKind` and `region` must equal the resource's when not empty.
    struct Specs {
        uint32 cpuCores;
        uint32 cpuClockSpeed;
        uint32 gpuMemory;
        uint32 gpuCount;
        uint32 ramSize;
        uint32 diskSize;
        string diskKind;
        string region;
    }

    /// @notice `deadline`: a demand's last fill time, or a task's last submission time.
    /// `escrow`: wei held (budget, then rent; or reward). `reviewWindow` is fixed at posting.
    struct Order {
        address consumer;
        Kind kind;
        State state;
        Acceptance acceptance;
        uint16 feeBps;
        uint32 periodDays;
        address provider;
        uint64 deadline;
        uint256 tokenId;
        uint128 escrow;
        uint128 pricePerDay;
        uint64 createdAt;
        uint64 start;
        uint64 end;
        uint64 submittedAt;
        uint64 reviewWindow;
        bytes32 expectedHash;
        bytes32 resultHash;
        uint256 disputeId;
        Specs specs;
        string specCid;
        string resultCid;
    }

    address public treasury;
    uint16 public feeBps;
    uint64 public reviewWindow;

    uint256 public orderCount;
    uint256 public totalEscrowed;
    uint256 public totalOwed;

    mapping(uint256 orderId => Order) private _orders;
    mapping(address account => uint256) private _owed;

    event DemandPosted(
        uint256 indexed orderId, address indexed consumer, uint256 budget, uint32 periodDays, uint64 deadline
    );
    event DemandFilled(
        uint256 indexed orderId,
        address indexed provider,
        uint256 indexed tokenId,
        uint128 pricePerDay,
        uint256 rent,
        uint64 start,
        uint64 end
    );
    event TaskPosted(
        uint256 indexed orderId,
        address indexed consumer,
        uint256 reward,
        uint64 deadline,
        Acceptance acceptance,
        bytes32 expectedHash,
        string specCid
    );
    event TaskTaken(uint256 indexed orderId, address indexed provider, uint256 indexed tokenId);
    event ResultSubmitted(uint256 indexed orderId, address indexed by, string resultCid, bytes32 resultHash);
    event DisputeOpened(uint256 indexed orderId, address indexed by, uint256 disputeId, string reason);
    /// @notice Every order ends with exactly one OrderClosed carrying where the escrow went.
    event OrderClosed(uint256 indexed orderId, State state, uint256 toConsumer, uint256 toProvider, uint256 fee);
    event ReputationCallFailed(uint256 indexed orderId);
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    event FeeUpdated(uint16 oldBps, uint16 newBps);
    event TreasuryUpdated(address oldTreasury, address newTreasury);
    event ReviewWindowUpdated(uint64 oldSeconds, uint64 newSeconds);

    error ZeroAccount();
    error FeeTooHigh(uint16 bps, uint16 max);
    error InvalidReviewWindow(uint64 seconds_);
    error OrdersPaused();
    error AccountBlocked(address account);
    error ResourceBlocked(uint256 tokenId);
    error ResourceNotVerified(uint256 tokenId);
    error ResourceBusy(uint256 tokenId);
    error ReputationTooLow(address account, uint256 reputation, uint256 minimum);
    error NotResourceOwner(uint256 tokenId, address caller);
    error SelfOrder(address account);
    error SpecsNotMet(uint256 tokenId, string field);
    error ZeroEscrow();
    error InvalidPeriod(uint32 periodDays);
    error InvalidDeadline(uint64 deadline);
    error InvalidPrice();
    error OverBudget(uint256 rent, uint256 budget);
    error InvalidExpectedHash(Acceptance acceptance);
    error EmptyText(string field);
    error TextTooLong(string field, uint256 length, uint256 max);
    error UnknownOrder(uint256 orderId);
    error WrongKind(uint256 orderId, Kind expected);
    error OrderNotInState(uint256 orderId, State expected, State actual);
    error NotConsumer(uint256 orderId, address caller);
    error NotProvider(uint256 orderId, address caller);
    error NotParty(uint256 orderId, address caller);
    error DeadlinePassed(uint256 orderId, uint64 deadline);
    error DeadlineNotReached(uint256 orderId, uint64 deadline);
    error RentalNotEnded(uint256 orderId, uint64 end);
    error RentalEnded(uint256 orderId, uint64 end);
    error ResultHashMismatch(uint256 orderId, bytes32 expected, bytes32 submitted);
    error ReviewWindowPassed(uint256 orderId, uint64 until);
    error ReviewWindowOpen(uint256 orderId, uint64 until);
    error NotDisputable(uint256 orderId, State state);
    error NotArbitration(address caller);
    error ShareExceedsEscrow(uint256 orderId, uint256 share, uint256 escrow);
    error InsufficientGas(uint256 left, uint256 needed);
    error NothingOwed(address account);
    error TransferFailed(address to, uint256 amount);

    /// @param foundation receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE.
    /// @param treasury_ is credited the platform fee.
    /// @param reviewWindow_ seconds a consumer has to accept or reject a MANUAL task result.
    constructor(address foundation, address treasury_, uint16 feeBps_, uint64 reviewWindow_) {
        if (foundation == address(0) || treasury_ == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, foundation);
        _grantRole(GOVERNANCE_ROLE, foundation);
        treasury = treasury_;
        _setFee(feeBps_);
        _setReviewWindow(reviewWindow_);
    }

    // ------------------------------------------------------------------ demand (rental type)

    /// @notice Post a rental-type demand; msg.value is the budget, held until filled or closed.
    /// Open until `deadline` (unix seconds, at most MAX_OPEN_PERIOD ahead).
    function postDemand(Specs calldata specs, uint32 periodDays, uint64 deadline)
        external
        payable
        nonReentrant
        returns (uint256 orderId)
    {
        if (periodDays == 0 || periodDays > MAX_PERIOD_DAYS) revert InvalidPeriod(periodDays);
        Order storage o = _post(Kind.Demand, specs, deadline);
        o.periodDays = periodDays;
        orderId = orderCount;
        emit DemandPosted(orderId, msg.sender, msg.value, periodDays, deadline);
    }

    /// @notice Fill open demand `orderId` with resource `tokenId` (the caller's, verified, meeting
    /// the specs) at `pricePerDay`; price × days must fit the budget, the rest is refunded.
    function fillDemand(uint256 orderId, uint256 tokenId, uint128 pricePerDay) external nonReentrant {
        Order storage o = _orderIn(orderId, Kind.Demand, State.Open);
        if (block.timestamp > o.deadline) revert DeadlinePassed(orderId, o.deadline);
        _checkProvider(o, tokenId);
        if (pricePerDay == 0) revert InvalidPrice();
        uint256 rent = uint256(pricePerDay) * o.periodDays;
        uint256 budget = o.escrow;
        if (rent > budget) revert OverBudget(rent, budget);
        uint64 start = uint64(block.timestamp);
        uint64 end = (block.timestamp + o.periodDays * DAY).toUint64();
        o.provider = msg.sender;
        o.tokenId = tokenId;
        o.pricePerDay = pricePerDay;
        o.escrow = rent.toUint128();
        o.start = start;
        o.end = end;
        o.state = State.Active;
        totalEscrowed -= budget - rent;
        _credit(o.consumer, budget - rent);
        NFT.markRented(tokenId, o.consumer, pricePerDay, o.periodDays, start, end);
        emit DemandFilled(orderId, msg.sender, tokenId, pricePerDay, rent, start, end);
    }

    /// @notice Anyone, after the end of a filled demand: credit the provider the rent minus the fee.
    function settle(uint256 orderId) external nonReentrant {
        Order storage o = _orderIn(orderId, Kind.Demand, State.Active);
        if (block.timestamp < o.end) revert RentalNotEnded(orderId, o.end);
        _close(orderId, o, 0, State.Completed);
    }

    // ------------------------------------------------------------------ tasks

    /// @notice Post a task; msg.value is the reward, held until the task closes. `deadline` is
    /// the last moment to take the task and submit a result. `expectedHash` must be set for HASH
    /// acceptance and zero for MANUAL.
    function postTask(
        string calldata specCid,
        Specs calldata specs,
        uint64 deadline,
        Acceptance acceptance,
        bytes32 expectedHash
    ) external payable nonReentrant returns (uint256 orderId) {
        _checkText("specCid", specCid, MAX_TEXT_LENGTH);
        if ((acceptance == Acceptance.Hash) != (expectedHash != bytes32(0))) revert InvalidExpectedHash(acceptance);
        Order storage o = _post(Kind.Task, specs, deadline);
        o.specCid = specCid;
        o.acceptance = acceptance;
        o.expectedHash = expectedHash;
        o.reviewWindow = reviewWindow;
        orderId = orderCount;
        emit TaskPosted(orderId, msg.sender, msg.value, deadline, acceptance, expectedHash, specCid);
    }

    /// @notice Take open task `orderId` with resource `tokenId` (the caller's, verified, meeting
    /// the requirements); the resource is marked rented to the consumer until the task closes.
    function takeTask(uint256 orderId, uint256 tokenId) external nonReentrant {
        Order storage o = _orderIn(orderId, Kind.Task, State.Open);
        uint64 deadline = o.deadline;
        if (block.timestamp > deadline) revert DeadlinePassed(orderId, deadline);
        _checkProvider(o, tokenId);
        o.provider = msg.sender;
        o.tokenId = tokenId;
        o.start = uint64(block.timestamp);
        o.state = State.Taken;
        NFT.markRented(tokenId, o.consumer, 0, 0, uint64(block.timestamp), deadline);
        emit TaskTaken(orderId, msg.sender, tokenId);
    }

    /// @notice The provider (or the resource's agent) submits the result by the deadline. HASH
    /// tasks: accepted and paid at once when `resultHash` equals the expected hash, refused
    /// otherwise. MANUAL tasks: the review window starts.
    function submitResult(uint256 orderId, string calldata resultCid, bytes32 resultHash) external nonReentrant {
        Order storage o = _orderIn(orderId, Kind.Task, State.Taken);
        if (msg.sender != o.provider && msg.sender != NFT.agentOf(o.tokenId)) revert NotProvider(orderId, msg.sender);
        if (block.timestamp > o.deadline) revert DeadlinePassed(orderId, o.deadline);
        _checkText("resultCid", resultCid, MAX_TEXT_LENGTH);
        bool byHash = o.acceptance == Acceptance.Hash;
        if (byHash && resultHash != o.expectedHash) revert ResultHashMismatch(orderId, o.expectedHash, resultHash);
        o.resultCid = resultCid;
        o.resultHash = resultHash;
        o.submittedAt = uint64(block.timestamp);
        o.state = State.Submitted;
        emit ResultSubmitted(orderId, msg.sender, resultCid, resultHash);
        if (byHash) _close(orderId, o, 0, State.Completed);
    }

    /// @notice The consumer accepts a submitted result: the provider is credited the reward
    /// minus the fee.
    function accept(uint256 orderId) external nonReentrant {
        Order storage o = _orderIn(orderId, Kind.Task, State.Submitted);
        if (msg.sender != o.consumer) revert NotConsumer(orderId, msg.sender);
        _close(orderId, o, 0, State.Completed);
    }

    /// @notice Anyone, after the review window of a submitted MANUAL result: accept it.
    function autoAccept(uint256 orderId) external nonReentrant {
        Order storage o = _orderIn(orderId, Kind.Task, State.Submitted);
        uint64 until = o.submittedAt + o.reviewWindow;
        if (block.timestamp <= until) revert ReviewWindowOpen(orderId, until);
        _close(orderId, o, 0, State.Completed);
    }

    /// @notice The consumer rejects a submitted result within the review window: the order goes
    /// to Arbitration (same as `openDispute`).
    function reject(uint256 orderId, string calldata reason) external nonReentrant returns (uint256) {
        Order storage o = _orderIn(orderId, Kind.Task, State.Submitted);
        if (msg.sender != o.consumer) revert NotConsumer(orderId, msg.sender);
        return _dispute(orderId, o, reason);
    }

    // ------------------------------------------------------------------ closing unfilled or failed

    /// @notice The consumer cancels an open (unfilled, untaken) order and is credited in full.
    function cancel(uint256 orderId) external nonReentrant {
        Order storage o = _order(orderId);
        if (o.state != State.Open) revert OrderNotInState(orderId, State.Open, o.state);
        if (msg.sender != o.consumer) revert NotConsumer(orderId, msg.sender);
        _close(orderId, o, o.escrow, State.Cancelled);
    }

    /// @notice Anyone, after the deadline: an open order expires (consumer credited in full); a
    /// taken task without a result fails (consumer credited in full, provider penalised).
    function expire(uint256 orderId) external nonReentrant {
        Order storage o = _order(orderId);
        State state = o.state;
        if (state != State.Open && state != State.Taken) revert OrderNotInState(orderId, State.Open, state);
        if (block.timestamp <= o.deadline) revert DeadlineNotReached(orderId, o.deadline);
        if (state == State.Open) {
            _close(orderId, o, o.escrow, State.Expired);
            return;
        }
        address provider = o.provider;
        _close(orderId, o, o.escrow, State.Failed);
        _reputationCall(orderId, abi.encodeCall(IReputation.recordFailure, (provider, orderKey(orderId))));
    }

    // ------------------------------------------------------------------ disputes

    /// @notice A party disputes a running order (a filled demand before its end, a taken task
    /// before its deadline, a submitted result within the review window): the escrow is frozen
    /// and handed to Arbitration.
    function openDispute(uint256 orderId, string calldata reason) external nonReentrant returns (uint256) {
        Order storage o = _order(orderId);
        if (msg.sender != o.consumer && msg.sender != o.provider) revert NotParty(orderId, msg.sender);
        State state = o.state;
        if (state == State.Active) {
            if (block.timestamp >= o.end) revert RentalEnded(orderId, o.end);
        } else if (state == State.Taken) {
            if (block.timestamp > o.deadline) revert DeadlinePassed(orderId, o.deadline);
        } else if (state != State.Submitted) {
            revert NotDisputable(orderId, state);
        }
        return _dispute(orderId, o, reason);
    }

    /// @inheritdoc IDisputable
    /// @dev `id` is the order id; callable only by SystemAddresses.ARBITRATION.
    function resolveDispute(uint256 id, uint256 consumerShare) external nonReentrant {
        if (msg.sender != SystemAddresses.ARBITRATION) revert NotArbitration(msg.sender);
        Order storage o = _order(id);
        if (o.state != State.Disputed) revert OrderNotInState(id, State.Disputed, o.state);
        uint256 escrow = o.escrow;
        if (consumerShare > escrow) revert ShareExceedsEscrow(id, consumerShare, escrow);
        emit DisputeResolved(id, consumerShare, escrow - consumerShare);
        _close(id, o, consumerShare, State.Resolved);
    }

    // ------------------------------------------------------------------ payments

    /// @notice Send everything owed to the caller to the caller. Never blocked by pause,
    /// freeze or blacklist.
    function withdraw() external nonReentrant returns (uint256) {
        return _withdraw(payable(msg.sender));
    }

    /// @notice Send everything owed to the caller to `to`.
    function withdrawTo(address payable to) external nonReentrant returns (uint256) {
        if (to == address(0)) revert ZeroAccount();
        return _withdraw(to);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Platform fee for future orders, in basis points (at most MAX_FEE_BPS).
    function setFee(uint16 bps) external onlyRole(GOVERNANCE_ROLE) {
        _setFee(bps);
    }

    /// @notice Account credited with fees from now on.
    function setTreasury(address newTreasury) external onlyRole(GOVERNANCE_ROLE) {
        if (newTreasury == address(0)) revert ZeroAccount();
        emit TreasuryUpdated(treasury, newTreasury);
        treasury = newTreasury;
    }

    /// @notice Review window (seconds) of MANUAL tasks posted from now on.
    function setReviewWindow(uint64 seconds_) external onlyRole(GOVERNANCE_ROLE) {
        _setReviewWindow(seconds_);
    }

    // ------------------------------------------------------------------ views

    /// @notice Order `orderId` (kind None when unknown).
    function orderOf(uint256 orderId) external view returns (Order memory) {
        return _orders[orderId];
    }

    /// @notice Wei `account` can withdraw now.
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @notice Key under which the Reputation contract records order `orderId`.
    function orderKey(uint256 orderId) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), orderId));
    }

    // ------------------------------------------------------------------ internals

    function _post(Kind kind, Specs calldata specs, uint64 deadline) private returns (Order storage o) {
        _whenNotPaused();
        _checkAccount(msg.sender);
        _checkReputation(msg.sender);
        if (msg.value == 0) revert ZeroEscrow();
        if (deadline <= block.timestamp || deadline > block.timestamp + MAX_OPEN_PERIOD) {
            revert InvalidDeadline(deadline);
        }
        _checkText("diskKind", specs.diskKind, 0);
        _checkText("region", specs.region, 0);
        uint256 orderId = ++orderCount;
        o = _orders[orderId];
        o.consumer = msg.sender;
        o.kind = kind;
        o.state = State.Open;
        o.feeBps = feeBps;
        o.deadline = deadline;
        o.escrow = msg.value.toUint128();
        o.createdAt = uint64(block.timestamp);
        o.specs = specs;
        totalEscrowed += msg.value;
    }

    /// @dev The caller may serve order `o` with `tokenId`: owns it, verified, free, not blocked,
    /// reputation high enough, meets the specs.
    function _checkProvider(Order storage o, uint256 tokenId) private view {
        _whenNotPaused();
        if (msg.sender == o.consumer) revert SelfOrder(msg.sender);
        (address owner, ResourceNFT.Resource memory r) = NFT.resourceOf(tokenId);
        if (owner != msg.sender) revert NotResourceOwner(tokenId, msg.sender);
        if (r.verification.status != ResourceNFT.VerificationStatus.Verified) revert ResourceNotVerified(tokenId);
        if (r.rentalInfo.status == ResourceNFT.RentalStatus.Rented) revert ResourceBusy(tokenId);
        _checkAccount(msg.sender);
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).isResourceBlocked(tokenId)) {
            revert ResourceBlocked(tokenId);
        }
        _checkReputation(msg.sender);
        Specs storage s = o.specs;
        ResourceNFT.PerformPara memory p = r.performPara;
        if (p.cpu.cores < s.cpuCores) revert SpecsNotMet(tokenId, "cpu.cores");
        if (p.cpu.clockSpeed < s.cpuClockSpeed) revert SpecsNotMet(tokenId, "cpu.clockSpeed");
        if (p.gpu.count < s.gpuCount) revert SpecsNotMet(tokenId, "gpu.count");
        if (s.gpuMemory != 0 && p.gpu.memorySize < s.gpuMemory) revert SpecsNotMet(tokenId, "gpu.memory");
        if (p.ram.size < s.ramSize) revert SpecsNotMet(tokenId, "memory.size");
        if (p.disk.size < s.diskSize) revert SpecsNotMet(tokenId, "disk.size");
        if (!_matches(s.diskKind, p.disk.kind)) revert SpecsNotMet(tokenId, "disk.type");
        if (!_matches(s.region, r.location.region)) revert SpecsNotMet(tokenId, "region");
    }

    function _matches(string storage wanted, string memory actual) private view returns (bool) {
        return bytes(wanted).length == 0 || keccak256(bytes(wanted)) == keccak256(bytes(actual));
    }

    function _dispute(uint256 orderId, Order storage o, string calldata reason) private returns (uint256 disputeId) {
        _checkText("reason", reason, MAX_REASON_LENGTH);
        if (o.state == State.Submitted) {
            uint64 until = o.submittedAt + o.reviewWindow;
            if (block.timestamp > until) revert ReviewWindowPassed(orderId, until);
        }
        o.state = State.Disputed;
        disputeId = IArbitration(SystemAddresses.ARBITRATION).openDispute(
            address(this), orderId, o.consumer, o.provider, o.escrow, reason
        );
        o.disputeId = disputeId;
        emit DisputeOpened(orderId, msg.sender, disputeId, reason);
    }

    /// @dev Ends order `o`: `toConsumer` wei of the escrow to the consumer, the rest to the
    /// provider minus the fee; frees the resource; records the order for reviews.
    function _close(uint256 orderId, Order storage o, uint256 toConsumer, State state) private {
        uint256 escrow = o.escrow;
        uint256 providerPart = escrow - toConsumer;
        uint256 fee = providerPart * o.feeBps / BPS;
        address consumer = o.consumer;
        address provider = o.provider;
        o.escrow = 0;
        o.state = state;
        totalEscrowed -= escrow;
        _credit(consumer, toConsumer);
        _credit(provider, providerPart - fee);
        _credit(treasury, fee);
        emit OrderClosed(orderId, state, toConsumer, providerPart - fee, fee);
        if (provider == address(0)) return;
        NFT.markAvailable(o.tokenId);
        _reputationCall(orderId, abi.encodeCall(IReputation.recordOrder, (orderKey(orderId), consumer, provider)));
    }

    /// @dev Calls Reputation with REPUTATION_GAS; its failure is tolerated (an event) so money
    /// never waits on it. The gas floor matters: gas estimation looks for the least gas with
    /// which the transaction succeeds, and without the floor it would starve this call.
    function _reputationCall(uint256 orderId, bytes memory data) private {
        uint256 needed = REPUTATION_GAS + REPUTATION_GAS / 63 + 5_000;
        if (gasleft() < needed) revert InsufficientGas(gasleft(), needed);
        (bool ok,) = SystemAddresses.REPUTATION.call{gas: REPUTATION_GAS}(data);
        if (!ok) emit ReputationCallFailed(orderId);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _owed[account] += amount;
        totalOwed += amount;
        emit Credited(account, amount);
    }

    function _withdraw(address payable to) private returns (uint256 amount) {
        amount = _owed[msg.sender];
        if (amount == 0) revert NothingOwed(msg.sender);
        _owed[msg.sender] = 0;
        totalOwed -= amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    function _order(uint256 orderId) private view returns (Order storage o) {
        o = _orders[orderId];
        if (o.kind == Kind.None) revert UnknownOrder(orderId);
    }

    function _orderIn(uint256 orderId, Kind kind, State state) private view returns (Order storage o) {
        o = _order(orderId);
        if (o.kind != kind) revert WrongKind(orderId, kind);
        if (o.state != state) revert OrderNotInState(orderId, state, o.state);
    }

    function _whenNotPaused() private view {
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).paused()) revert OrdersPaused();
    }

    function _checkAccount(address account) private view {
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).isAccountBlocked(account)) {
            revert AccountBlocked(account);
        }
    }

    function _checkReputation(address account) private view {
        IReputation reputation = IReputation(SystemAddresses.REPUTATION);
        if (address(reputation).code.length == 0) return;
        uint256 minimum = reputation.minReputation();
        if (minimum == 0) return;
        uint256 score = reputation.reputationOf(account);
        if (score < minimum) revert ReputationTooLow(account, score, minimum);
    }

    /// @dev Non-empty (when `max` > 0) text of at most `max` bytes (MAX_TEXT_LENGTH when 0, may be empty).
    function _checkText(string memory field, string calldata text, uint256 max) private pure {
        uint256 length = bytes(text).length;
        if (max == 0) {
            max = MAX_TEXT_LENGTH;
        } else if (length == 0) {
            revert EmptyText(field);
        }
        if (length > max) revert TextTooLong(field, length, max);
    }

    function _setFee(uint16 bps) private {
        if (bps > MAX_FEE_BPS) revert FeeTooHigh(bps, MAX_FEE_BPS);
        emit FeeUpdated(feeBps, bps);
        feeBps = bps;
    }

    function _setReviewWindow(uint64 seconds_) private {
        if (seconds_ == 0 || seconds_ > MAX_REVIEW_WINDOW) revert InvalidReviewWindow(seconds_);
        emit ReviewWindowUpdated(reviewWindow, seconds_);
        reviewWindow = seconds_;
    }
}
