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

/// @title PowerVerse compute market (whitepaper 5.3.1): listings and rentals with escrowed PVC.
/// @notice A provider lists a verified resource (price per day in wei, availability window,
/// minimum and maximum rental period in days). A consumer rents it for whole days, paying
/// exactly price × days, which the contract holds in escrow; the ResourceNFT becomes rented.
/// The provider confirms the start within `confirmWindow` seconds, otherwise anyone may call
/// `claimRefund` and the consumer is credited in full. From confirmation the rental runs
/// `days × 86400` seconds; at its end anyone may `settle`: the provider is credited the rent
/// minus the platform fee (basis points, fixed per rental when it is made), the treasury the
/// fee. The provider's agent posts heartbeats; when none came for more than
/// `heartbeatInterval + heartbeatGrace` seconds before the end, anyone may
/// `reportMissedHeartbeat`: the rental ends at the last heartbeat and the consumer is credited
/// the unused part pro rata by the second. Either party may open a dispute before the rental is
/// closed: the escrow is frozen and handed to SystemAddresses.ARBITRATION when that address has
/// code; otherwise the dispute stays here and an ARBITER_ROLE holder may resolve it.
/// All payments are pull payments (`owed`, `withdraw`); the contract's balance equals
/// `totalEscrowed() + totalOwed()` (plus any coin forced in without a call).
contract Market is AccessControl, ReentrancyGuardTransient, IDisputable {
    using SafeCast for uint256;

    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");

    uint256 public constant DAY = 1 days;
    uint256 public constant BPS = 10_000;
    uint16 public constant MAX_FEE_BPS = 3_000;
    uint64 public constant MAX_CONFIRM_WINDOW = 30 days;
    uint64 public constant MAX_HEARTBEAT_PERIOD = 30 days;
    uint256 public constant MAX_REASON_LENGTH = 512;
    /// @notice Gas given to Reputation.recordOrder. A closing call must carry at least this much
    /// more (checked), so that gas estimation cannot settle on a limit at which the record
    /// silently runs out of gas inside the try/catch.
    uint256 public constant RECORD_ORDER_GAS = 250_000;

    ResourceNFT public constant NFT = ResourceNFT(SystemAddresses.RESOURCE_NFT);

    enum ListingStatus {
        None,
        Active,
        Paused
    }

    /// @notice Ended states: Settled (paid in full), Refunded (never started), Terminated
    /// (provider fault), Resolved (dispute ruling).
    enum RentalState {
        None,
        Pending,
        Active,
        Settled,
        Refunded,
        Terminated,
        Disputed,
        Resolved
    }

    struct Listing {
        address provider;
        ListingStatus status;
        uint32 minDays;
        uint32 maxDays;
        uint64 availableFrom;
        uint64 availableUntil;
        uint128 pricePerDay;
    }

    struct Rental {
        uint256 tokenId;
        address consumer;
        uint64 createdAt;
        uint32 periodDays;
        address provider;
        uint64 confirmDeadline;
        uint16 feeBps;
        RentalState state;
        bool handedToArbitration;
        uint64 start;
        uint64 end;
        uint64 lastHeartbeat;
        uint128 pricePerDay;
        uint128 escrow;
        uint256 disputeId;
    }

    address public treasury;
    uint16 public feeBps;
    uint64 public confirmWindow;
    uint64 public heartbeatInterval;
    uint64 public heartbeatGrace;

    uint256 public rentalCount;
    uint256 public totalEscrowed;
    uint256 public totalOwed;

    mapping(uint256 tokenId => Listing) private _listings;
    mapping(uint256 rentalId => Rental) private _rentals;
    mapping(uint256 tokenId => uint256 rentalId) public currentRentalOf;
    mapping(address account => uint256) private _owed;

    event Listed(
        uint256 indexed tokenId,
        address indexed provider,
        uint128 pricePerDay,
        uint64 availableFrom,
        uint64 availableUntil,
        uint32 minDays,
        uint32 maxDays
    );
    event PriceUpdated(uint256 indexed tokenId, uint128 oldPrice, uint128 newPrice);
    event ListingPaused(uint256 indexed tokenId);
    event ListingResumed(uint256 indexed tokenId);
    event Unlisted(uint256 indexed tokenId, address indexed by);
    event Rented(
        uint256 indexed rentalId,
        uint256 indexed tokenId,
        address indexed consumer,
        address provider,
        uint32 periodDays,
        uint256 amount,
        uint64 confirmDeadline
    );
    event RentalConfirmed(uint256 indexed rentalId, uint64 start, uint64 end);
    event RentalDeclined(uint256 indexed rentalId);
    event RentalExtended(uint256 indexed rentalId, uint32 extraDays, uint256 amount, uint64 newEnd);
    event Heartbeat(uint256 indexed rentalId, uint64 at);
    event MissedHeartbeatReported(uint256 indexed rentalId, address indexed reporter, uint64 lastHeartbeat);
    event DisputeOpened(
        uint256 indexed rentalId, address indexed by, uint256 disputeId, bool handedToArbitration, string reason
    );
    /// @notice Every rental ends with exactly one RentalClosed carrying where the escrow went.
    event RentalClosed(
        uint256 indexed rentalId, RentalState state, uint256 toConsumer, uint256 toProvider, uint256 fee
    );
    event ReputationRecordFailed(uint256 indexed rentalId);
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    event FeeUpdated(uint16 oldBps, uint16 newBps);
    event TreasuryUpdated(address oldTreasury, address newTreasury);
    event ConfirmWindowUpdated(uint64 oldSeconds, uint64 newSeconds);
    event HeartbeatConfigUpdated(uint64 interval, uint64 grace);

    error ZeroAccount();
    error FeeTooHigh(uint16 bps, uint16 max);
    error InvalidConfig(string field);
    error MarketPaused();
    error AccountBlocked(address account);
    error ResourceBlocked(uint256 tokenId);
    error ResourceNotVerified(uint256 tokenId);
    error ReputationTooLow(address account, uint256 reputation, uint256 minimum);
    error NotResourceOwner(uint256 tokenId, address caller);
    error AlreadyListed(uint256 tokenId);
    error NotListed(uint256 tokenId);
    error ListingNotActive(uint256 tokenId);
    error ListingNotPaused(uint256 tokenId);
    error ListingStale(uint256 tokenId, address listedBy, address owner);
    error InvalidPrice();
    error InvalidPeriodBounds(uint32 minDays, uint32 maxDays);
    error InvalidWindow(uint64 availableFrom, uint64 availableUntil);
    error PeriodOutOfRange(uint32 periodDays, uint32 minDays, uint32 maxDays);
    error OutsideAvailability(uint64 start, uint64 end, uint64 availableFrom, uint64 availableUntil);
    error WrongPayment(uint256 expected, uint256 sent);
    error SelfRental(address account);
    error ResourceBusy(uint256 tokenId);
    error UnknownRental(uint256 rentalId);
    error RentalNotInState(uint256 rentalId, RentalState expected, RentalState actual);
    error RentalNotOpen(uint256 rentalId, RentalState state);
    error NotProvider(uint256 rentalId, address caller);
    error NotConsumer(uint256 rentalId, address caller);
    error NotParty(uint256 rentalId, address caller);
    error ConfirmDeadlinePassed(uint256 rentalId, uint64 deadline);
    error ConfirmDeadlineNotReached(uint256 rentalId, uint64 deadline);
    error RentalNotExpired(uint256 rentalId, uint64 end);
    error RentalExpired(uint256 rentalId, uint64 end);
    error HeartbeatNotMissed(uint256 rentalId, uint64 lastHeartbeat, uint64 faultAfter);
    error NotArbiter(address caller);
    error ShareExceedsEscrow(uint256 rentalId, uint256 share, uint256 escrow);
    error EmptyReason();
    error ReasonTooLong(uint256 length, uint256 max);
    error NothingOwed(address account);
    error TransferFailed(address to, uint256 amount);
    error InsufficientGas(uint256 gasLeft, uint256 needed);

    /// @param foundation receives DEFAULT_ADMIN_ROLE, GOVERNANCE_ROLE and ARBITER_ROLE.
    /// @param treasury_ is credited the platform fee.
    constructor(
        address foundation,
        address treasury_,
        uint16 feeBps_,
        uint64 confirmWindow_,
        uint64 heartbeatInterval_,
        uint64 heartbeatGrace_
    ) {
        if (foundation == address(0) || treasury_ == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, foundation);
        _grantRole(GOVERNANCE_ROLE, foundation);
        _grantRole(ARBITER_ROLE, foundation);
        treasury = treasury_;
        _setFee(feeBps_);
        _setConfirmWindow(confirmWindow_);
        _setHeartbeat(heartbeatInterval_, heartbeatGrace_);
    }

    // ------------------------------------------------------------------ listings

    /// @notice List resource `tokenId` (caller must own it; verified, not frozen or blacklisted).
    function list(
        uint256 tokenId,
        uint128 pricePerDay,
        uint64 availableFrom,
        uint64 availableUntil,
        uint32 minDays,
        uint32 maxDays
    ) external {
        _checkListable(tokenId, msg.sender);
        Listing storage l = _listings[tokenId];
        if (l.status != ListingStatus.None && l.provider == msg.sender) revert AlreadyListed(tokenId);
        if (pricePerDay == 0) revert InvalidPrice();
        if (minDays == 0 || minDays > maxDays) revert InvalidPeriodBounds(minDays, maxDays);
        if (availableUntil <= availableFrom || availableUntil <= block.timestamp) {
            revert InvalidWindow(availableFrom, availableUntil);
        }
        _listings[tokenId] =
            Listing(msg.sender, ListingStatus.Active, minDays, maxDays, availableFrom, availableUntil, pricePerDay);
        emit Listed(tokenId, msg.sender, pricePerDay, availableFrom, availableUntil, minDays, maxDays);
    }

    /// @notice Change the price per day of future rentals (running rentals keep theirs).
    function updatePrice(uint256 tokenId, uint128 pricePerDay) external {
        Listing storage l = _ownListing(tokenId);
        if (pricePerDay == 0) revert InvalidPrice();
        emit PriceUpdated(tokenId, l.pricePerDay, pricePerDay);
        l.pricePerDay = pricePerDay;
    }

    /// @notice Stop accepting rentals of `tokenId` for now (the listing stays).
    function pauseListing(uint256 tokenId) external {
        Listing storage l = _ownListing(tokenId);
        if (l.status != ListingStatus.Active) revert ListingNotActive(tokenId);
        l.status = ListingStatus.Paused;
        emit ListingPaused(tokenId);
    }

    /// @notice Accept rentals of `tokenId` again (same checks as listing).
    function resumeListing(uint256 tokenId) external {
        Listing storage l = _ownListing(tokenId);
        if (l.status != ListingStatus.Paused) revert ListingNotPaused(tokenId);
        _checkListable(tokenId, msg.sender);
        l.status = ListingStatus.Active;
        emit ListingResumed(tokenId);
    }

    /// @notice Remove the listing of `tokenId` (a running rental goes on).
    function unlist(uint256 tokenId) external {
        Listing storage l = _listings[tokenId];
        if (l.status == ListingStatus.None) revert NotListed(tokenId);
        if (l.provider != msg.sender && NFT.ownerOf(tokenId) != msg.sender) {
            revert NotResourceOwner(tokenId, msg.sender);
        }
        delete _listings[tokenId];
        emit Unlisted(tokenId, msg.sender);
    }

    // ------------------------------------------------------------------ rentals

    /// @notice Rent `tokenId` for `periodDays` days, paying exactly pricePerDay × periodDays.
    function rent(uint256 tokenId, uint32 periodDays) external payable nonReentrant returns (uint256 rentalId) {
        _whenNotPaused();
        Listing memory l = _listings[tokenId];
        if (l.status == ListingStatus.None) revert NotListed(tokenId);
        if (l.status != ListingStatus.Active) revert ListingNotActive(tokenId);
        address owner = NFT.ownerOf(tokenId);
        if (owner != l.provider) revert ListingStale(tokenId, l.provider, owner);
        if (msg.sender == owner) revert SelfRental(msg.sender);
        if (!NFT.isVerified(tokenId)) revert ResourceNotVerified(tokenId);
        _checkResource(tokenId);
        _checkAccount(msg.sender);
        _checkAccount(owner);
        _checkReputation(msg.sender);
        if (periodDays < l.minDays || periodDays > l.maxDays) {
            revert PeriodOutOfRange(periodDays, l.minDays, l.maxDays);
        }
        uint64 end = (block.timestamp + periodDays * DAY).toUint64();
        if (block.timestamp < l.availableFrom || end > l.availableUntil) {
            revert OutsideAvailability(uint64(block.timestamp), end, l.availableFrom, l.availableUntil);
        }
        uint256 price = uint256(l.pricePerDay) * periodDays;
        if (msg.value != price) revert WrongPayment(price, msg.value);
        if (NFT.isRented(tokenId)) revert ResourceBusy(tokenId);

        rentalId = ++rentalCount;
        uint64 deadline = (block.timestamp + confirmWindow).toUint64();
        Rental storage r = _rentals[rentalId];
        r.tokenId = tokenId;
        r.consumer = msg.sender;
        r.createdAt = uint64(block.timestamp);
        r.periodDays = periodDays;
        r.provider = owner;
        r.confirmDeadline = deadline;
        r.feeBps = feeBps;
        r.state = RentalState.Pending;
        r.pricePerDay = l.pricePerDay;
        r.escrow = price.toUint128();
        totalEscrowed += price;
        currentRentalOf[tokenId] = rentalId;
        NFT.markRented(tokenId, msg.sender, l.pricePerDay, periodDays, uint64(block.timestamp), end);
        emit Rented(rentalId, tokenId, msg.sender, owner, periodDays, price, deadline);
    }

    /// @notice The provider (or its agent) confirms the start; the rental runs from now.
    function confirm(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentalIn(rentalId, RentalState.Pending);
        _checkProviderOrAgent(r, rentalId);
        if (block.timestamp > r.confirmDeadline) revert ConfirmDeadlinePassed(rentalId, r.confirmDeadline);
        _checkAccount(r.provider);
        uint64 start = uint64(block.timestamp);
        uint64 end = (block.timestamp + r.periodDays * DAY).toUint64();
        r.start = start;
        r.end = end;
        r.lastHeartbeat = start;
        r.state = RentalState.Active;
        NFT.updateRentalTerm(r.tokenId, r.periodDays, start, end);
        emit RentalConfirmed(rentalId, start, end);
    }

    /// @notice The provider turns a pending rental down; the consumer is credited in full.
    function decline(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentalIn(rentalId, RentalState.Pending);
        _checkProviderOrAgent(r, rentalId);
        emit RentalDeclined(rentalId);
        _close(rentalId, r, r.escrow, RentalState.Refunded);
    }

    /// @notice Anyone: after the confirm deadline of an unconfirmed rental, credit the consumer in full.
    function claimRefund(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentalIn(rentalId, RentalState.Pending);
        if (block.timestamp <= r.confirmDeadline) revert ConfirmDeadlineNotReached(rentalId, r.confirmDeadline);
        _close(rentalId, r, r.escrow, RentalState.Refunded);
    }

    /// @notice Anyone: after the end, credit the provider the rent minus the fee.
    function settle(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentalIn(rentalId, RentalState.Active);
        if (block.timestamp < r.end) revert RentalNotExpired(rentalId, r.end);
        _close(rentalId, r, 0, RentalState.Settled);
    }

    /// @notice The consumer extends an active rental before its end by `extraDays`, paying
    /// exactly the rental's pricePerDay × extraDays. The listing must still be active and allow
    /// the longer period and the later end.
    function extend(uint256 rentalId, uint32 extraDays) external payable nonReentrant {
        _whenNotPaused();
        Rental storage r = _rentalIn(rentalId, RentalState.Active);
        if (msg.sender != r.consumer) revert NotConsumer(rentalId, msg.sender);
        if (block.timestamp >= r.end) revert RentalExpired(rentalId, r.end);
        uint256 tokenId = r.tokenId;
        Listing storage l = _listings[tokenId];
        if (l.status == ListingStatus.None || l.provider != r.provider) revert NotListed(tokenId);
        if (l.status != ListingStatus.Active) revert ListingNotActive(tokenId);
        _checkResource(tokenId);
        _checkAccount(msg.sender);
        uint32 total = (uint256(r.periodDays) + extraDays).toUint32();
        if (extraDays == 0 || total > l.maxDays) revert PeriodOutOfRange(total, l.minDays, l.maxDays);
        uint64 newEnd = (r.end + extraDays * DAY).toUint64();
        if (newEnd > l.availableUntil) revert OutsideAvailability(r.start, newEnd, l.availableFrom, l.availableUntil);
        uint256 price = uint256(r.pricePerDay) * extraDays;
        if (msg.value != price) revert WrongPayment(price, msg.value);
        r.periodDays = total;
        r.end = newEnd;
        r.escrow = (uint256(r.escrow) + price).toUint128();
        totalEscrowed += price;
        NFT.updateRentalTerm(tokenId, total, r.start, newEnd);
        emit RentalExtended(rentalId, extraDays, price, newEnd);
    }

    /// @notice The provider's agent (or the provider) reports the resource alive.
    function heartbeat(uint256 rentalId) external {
        Rental storage r = _rentalIn(rentalId, RentalState.Active);
        _checkProviderOrAgent(r, rentalId);
        if (block.timestamp >= r.end) revert RentalExpired(rentalId, r.end);
        r.lastHeartbeat = uint64(block.timestamp);
        emit Heartbeat(rentalId, uint64(block.timestamp));
    }

    /// @notice Anyone, before the end: no heartbeat for more than heartbeatInterval +
    /// heartbeatGrace seconds ends the rental for provider fault at the last heartbeat; the
    /// consumer is credited the unused part pro rata (by the second), the provider the rest
    /// minus the fee.
    function reportMissedHeartbeat(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentalIn(rentalId, RentalState.Active);
        if (block.timestamp >= r.end) revert RentalExpired(rentalId, r.end);
        uint64 last = r.lastHeartbeat;
        uint64 faultAfter = last + heartbeatInterval + heartbeatGrace;
        if (block.timestamp <= faultAfter) revert HeartbeatNotMissed(rentalId, last, faultAfter);
        uint256 refund = uint256(r.escrow) * (r.end - last) / (r.end - r.start);
        emit MissedHeartbeatReported(rentalId, msg.sender, last);
        _close(rentalId, r, refund, RentalState.Terminated);
    }

    // ------------------------------------------------------------------ disputes

    /// @notice The consumer or the provider disputes an open (pending or active, not yet
    /// closed) rental: the escrow is frozen until a ruling. Handed to the Arbitration contract
    /// when SystemAddresses.ARBITRATION has code; otherwise it waits for an ARBITER_ROLE holder.
    function openDispute(uint256 rentalId, string calldata reason) external nonReentrant returns (uint256 disputeId) {
        Rental storage r = _rental(rentalId);
        if (msg.sender != r.consumer && msg.sender != r.provider) revert NotParty(rentalId, msg.sender);
        if (r.state != RentalState.Pending && r.state != RentalState.Active) revert RentalNotOpen(rentalId, r.state);
        uint256 length = bytes(reason).length;
        if (length == 0) revert EmptyReason();
        if (length > MAX_REASON_LENGTH) revert ReasonTooLong(length, MAX_REASON_LENGTH);
        r.state = RentalState.Disputed;
        address arbitration = SystemAddresses.ARBITRATION;
        bool handed = arbitration.code.length > 0;
        if (handed) {
            disputeId =
                IArbitration(arbitration).openDispute(address(this), rentalId, r.consumer, r.provider, r.escrow, reason);
            r.disputeId = disputeId;
            r.handedToArbitration = true;
        }
        emit DisputeOpened(rentalId, msg.sender, disputeId, handed, reason);
    }

    /// @inheritdoc IDisputable
    /// @dev `id` is the rental id. A dispute handed to Arbitration is resolved only by it; one
    /// opened while ARBITRATION had no code by it or by an ARBITER_ROLE holder.
    function resolveDispute(uint256 id, uint256 consumerShare) external nonReentrant {
        Rental storage r = _rentalIn(id, RentalState.Disputed);
        bool byArbitration = msg.sender == SystemAddresses.ARBITRATION;
        if (!byArbitration && (r.handedToArbitration || !hasRole(ARBITER_ROLE, msg.sender))) {
            revert NotArbiter(msg.sender);
        }
        uint256 escrow = r.escrow;
        if (consumerShare > escrow) revert ShareExceedsEscrow(id, consumerShare, escrow);
        emit DisputeResolved(id, consumerShare, escrow - consumerShare);
        _close(id, r, consumerShare, RentalState.Resolved);
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

    /// @notice Platform fee for future rentals, in basis points (at most MAX_FEE_BPS).
    function setFee(uint16 bps) external onlyRole(GOVERNANCE_ROLE) {
        _setFee(bps);
    }

    /// @notice Account credited with fees from now on.
    function setTreasury(address newTreasury) external onlyRole(GOVERNANCE_ROLE) {
        if (newTreasury == address(0)) revert ZeroAccount();
        emit TreasuryUpdated(treasury, newTreasury);
        treasury = newTreasury;
    }

    /// @notice Seconds a provider has to confirm a new rental.
    function setConfirmWindow(uint64 seconds_) external onlyRole(GOVERNANCE_ROLE) {
        _setConfirmWindow(seconds_);
    }

    /// @notice Expected heartbeat period and the extra grace before a fault may be reported.
    function setHeartbeat(uint64 interval, uint64 grace) external onlyRole(GOVERNANCE_ROLE) {
        _setHeartbeat(interval, grace);
    }

    // ------------------------------------------------------------------ views

    /// @notice The listing of `tokenId` (status None when not listed).
    function listingOf(uint256 tokenId) external view returns (Listing memory) {
        return _listings[tokenId];
    }

    /// @notice Rental `rentalId` (state None when unknown).
    function rentalOf(uint256 rentalId) external view returns (Rental memory) {
        return _rentals[rentalId];
    }

    /// @notice Wei `account` can withdraw now.
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @notice Price in wei of renting `tokenId` for `periodDays` days at its listed price.
    function quote(uint256 tokenId, uint32 periodDays) external view returns (uint256) {
        return uint256(_listings[tokenId].pricePerDay) * periodDays;
    }

    /// @notice Key under which the Reputation contract records rental `rentalId`.
    function orderKey(uint256 rentalId) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), rentalId));
    }

    // ------------------------------------------------------------------ internals

    function _close(uint256 rentalId, Rental storage r, uint256 toConsumer, RentalState state) private {
        uint256 escrow = r.escrow;
        uint256 providerPart = escrow - toConsumer;
        uint256 fee = providerPart * r.feeBps / BPS;
        address consumer = r.consumer;
        address provider = r.provider;
        r.escrow = 0;
        r.state = state;
        totalEscrowed -= escrow;
        _credit(consumer, toConsumer);
        _credit(provider, providerPart - fee);
        _credit(treasury, fee);
        uint256 tokenId = r.tokenId;
        delete currentRentalOf[tokenId];
        NFT.markAvailable(tokenId);
        emit RentalClosed(rentalId, state, toConsumer, providerPart - fee, fee);
        _recordOrder(rentalId, consumer, provider);
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

    function _recordOrder(uint256 rentalId, address consumer, address provider) private {
        address reputation = SystemAddresses.REPUTATION;
        if (reputation.code.length == 0) return;
        uint256 needed = RECORD_ORDER_GAS + RECORD_ORDER_GAS / 63 + 10_000;
        if (gasleft() < needed) revert InsufficientGas(gasleft(), needed);
        try IReputation(reputation).recordOrder{gas: RECORD_ORDER_GAS}(orderKey(rentalId), consumer, provider) {}
        catch {
            emit ReputationRecordFailed(rentalId);
        }
    }

    function _rental(uint256 rentalId) private view returns (Rental storage r) {
        r = _rentals[rentalId];
        if (r.state == RentalState.None) revert UnknownRental(rentalId);
    }

    function _rentalIn(uint256 rentalId, RentalState expected) private view returns (Rental storage r) {
        r = _rental(rentalId);
        if (r.state != expected) revert RentalNotInState(rentalId, expected, r.state);
    }

    function _ownListing(uint256 tokenId) private view returns (Listing storage l) {
        l = _listings[tokenId];
        if (l.status == ListingStatus.None) revert NotListed(tokenId);
        if (l.provider != msg.sender) revert NotResourceOwner(tokenId, msg.sender);
    }

    function _checkProviderOrAgent(Rental storage r, uint256 rentalId) private view {
        if (msg.sender != r.provider && msg.sender != NFT.agentOf(r.tokenId)) {
            revert NotProvider(rentalId, msg.sender);
        }
    }

    function _checkListable(uint256 tokenId, address provider) private view {
        if (!NFT.isVerified(tokenId)) revert ResourceNotVerified(tokenId);
        if (NFT.ownerOf(tokenId) != provider) revert NotResourceOwner(tokenId, provider);
        _checkResource(tokenId);
        _checkAccount(provider);
        _checkReputation(provider);
    }

    function _whenNotPaused() private view {
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).paused()) revert MarketPaused();
    }

    function _checkAccount(address account) private view {
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).isAccountBlocked(account)) {
            revert AccountBlocked(account);
        }
    }

    function _checkResource(uint256 tokenId) private view {
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).isResourceBlocked(tokenId)) {
            revert ResourceBlocked(tokenId);
        }
    }

    function _checkReputation(address account) private view {
        address reputation = SystemAddresses.REPUTATION;
        if (reputation.code.length == 0) return;
        uint256 minimum = IReputation(reputation).minReputation();
        if (minimum == 0) return;
        uint256 score = IReputation(reputation).reputationOf(account);
        if (score < minimum) revert ReputationTooLow(account, score, minimum);
    }

    function _setFee(uint16 bps) private {
        if (bps > MAX_FEE_BPS) revert FeeTooHigh(bps, MAX_FEE_BPS);
        emit FeeUpdated(feeBps, bps);
        feeBps = bps;
    }

    function _setConfirmWindow(uint64 seconds_) private {
        if (seconds_ == 0 || seconds_ > MAX_CONFIRM_WINDOW) revert InvalidConfig("confirmWindow");
        emit ConfirmWindowUpdated(confirmWindow, seconds_);
        confirmWindow = seconds_;
    }

    function _setHeartbeat(uint64 interval, uint64 grace) private {
        if (interval == 0 || interval > MAX_HEARTBEAT_PERIOD) revert InvalidConfig("heartbeatInterval");
        if (grace > MAX_HEARTBEAT_PERIOD) revert InvalidConfig("heartbeatGrace");
        heartbeatInterval = interval;
        heartbeatGrace = grace;
        emit HeartbeatConfigUpdated(interval, grace);
    }
}
