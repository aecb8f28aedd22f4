// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {Arbitration} from "./Arbitration.sol";
import {IPlatformAdmin} from "./interfaces/IPlatformAdmin.sol";
import {Market} from "./Market.sol";
import {ResourceNFT} from "./ResourceNFT.sol";
import {SystemAddresses} from "./SystemAddresses.sol";

/// @title The monthly dividend pool (whitepaper 8.2), predeployed at 0x…200a.
/// @notice The pool is everything the contract holds that no closed epoch still owes: the
/// chain credits 3 % of every block reward to this address without a call (like a coinbase
/// payment), and anyone may donate (`donate()` or a plain transfer).
///
/// Epochs are 30-day months from `firstEpochStart` (the listing time + 30 days). Each epoch is
/// cut into slots of `slotLength` seconds (governable; a change applies from the next epoch).
/// A device (ResourceNFT token) is **online** for an epoch once its owner or agent has sent
/// `heartbeat(tokenId)` in at least 90 % of the epoch's slots (rounded up), at most one per
/// slot; a heartbeat counts only while the device is verified, listed on the Market by its
/// owner, and neither it nor its owner is frozen or blacklisted. At the heartbeat that makes a
/// device online, its performPoints are added to its owner's score for the epoch and to the
/// epoch's total (a snapshot at that moment). An account flagged for a violation in an epoch
/// (by a PlatformAdmin ADMIN_ROLE holder, a FLAGGER_ROLE holder, or by anyone pointing at an
/// arbitration ruling against it) scores 0 in that epoch.
///
/// After an epoch ends anyone may `close` it (in order): its pool is the contract's balance
/// minus what earlier epochs still owe (`reserved`). An epoch with a total score of 0 reserves
/// nothing, so its pool stays for the next one. Each scored account then claims
/// `pool × score / total` (rounded down) once, for ever; when the last score of an epoch is
/// claimed, its rounding dust is released to the next epoch to close.
///
/// Invariant: `address(this).balance >= reserved` (more by the pool of the epoch under way).
contract DividendPool is AccessControl, ReentrancyGuard {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice May flag violations (for example the DAO, or a future Arbitration hook).
    bytes32 public constant FLAGGER_ROLE = keccak256("FLAGGER_ROLE");
    /// @notice PlatformAdmin's ADMIN_ROLE: its holders may flag violations too.
    bytes32 public constant PLATFORM_ADMIN_ROLE = keccak256("ADMIN_ROLE");

    uint256 public constant EPOCH_LENGTH = 30 days;
    uint256 public constant ONLINE_BPS = 9_000;
    uint256 public constant BPS = 10_000;
    uint64 public constant MIN_SLOT_LENGTH = 60;
    uint256 public constant MAX_REASON_LENGTH = 512;

    ResourceNFT public constant NFT = ResourceNFT(SystemAddresses.RESOURCE_NFT);
    Market public constant MARKET = Market(SystemAddresses.MARKET);
    Arbitration public constant ARBITRATION = Arbitration(SystemAddresses.ARBITRATION);
    IPlatformAdmin public constant PLATFORM_ADMIN = IPlatformAdmin(SystemAddresses.PLATFORM_ADMIN);

    struct Epoch {
        uint64 slotLength; // fixed at the epoch's first heartbeat, a slot-length change or close
        bool closed;
        uint256 pool;
        uint256 totalScore;
        uint256 claimedScore;
        uint256 claimedAmount;
    }

    struct Device {
        uint32 heartbeats; // slots with a heartbeat
        uint32 lastSlot; // last slot with a heartbeat, plus one (0: none)
        bool online;
    }

    /// @notice Everything about one epoch, for views.
    struct EpochView {
        uint256 epoch;
        uint64 start;
        uint64 end;
        uint64 slotLength;
        uint32 slots;
        uint32 required;
        bool closed;
        uint256 pool;
        uint256 totalScore;
        uint256 claimedScore;
        uint256 claimedAmount;
    }

    /// @notice Start of epoch 0: the genesis listing time + 30 days.
    uint64 public immutable firstEpochStart;
    /// @notice Slot length of epochs whose slot length is not fixed yet.
    uint64 public slotLength;
    /// @notice Wei owed to closed epochs' scored accounts and not yet claimed.
    uint256 public reserved;
    /// @notice Epochs close in order; this is the next one.
    uint256 public nextEpochToClose;

    mapping(uint256 epoch => Epoch) private _epochs;
    mapping(uint256 epoch => mapping(uint256 tokenId => Device)) private _devices;
    mapping(uint256 epoch => mapping(address account => uint256)) private _scores;
    mapping(uint256 epoch => mapping(address account => bool)) private _flagged;
    mapping(uint256 epoch => mapping(address account => bool)) private _claimed;

    event Donated(address indexed from, uint256 amount);
    event SlotLengthChanged(uint64 oldLength, uint64 newLength, address indexed by);
    event Heartbeat(uint256 indexed epoch, uint256 indexed tokenId, uint32 slot, address indexed by);
    event DeviceOnline(
        uint256 indexed epoch, uint256 indexed tokenId, address indexed owner, uint256 points, bool credited
    );
    event ViolationFlagged(
        uint256 indexed epoch, address indexed account, address indexed by, uint256 removedScore, string reason
    );
    event EpochClosed(
        uint256 indexed epoch, uint256 pool, uint256 totalScore, uint256 balance, uint256 reservedBefore
    );
    event Claimed(
        uint256 indexed epoch, address indexed account, address indexed caller, uint256 amount, uint256 score
    );
    event DustReleased(uint256 indexed epoch, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error InvalidSlotLength(uint64 length);
    error NotStarted(uint64 firstEpochStart);
    error NotOwnerOrAgent(uint256 tokenId, address caller);
    error ResourceNotVerified(uint256 tokenId);
    error NotListed(uint256 tokenId);
    error ResourceBlocked(uint256 tokenId);
    error AccountBlocked(address account);
    error AlreadyBeaten(uint256 tokenId, uint256 epoch, uint32 slot);
    error NotFlagger(address caller);
    error EpochNotStarted(uint256 epoch);
    error EpochAlreadyClosed(uint256 epoch);
    error AlreadyFlagged(uint256 epoch, address account);
    error EmptyReason();
    error ReasonTooLong(uint256 length, uint256 max);
    error DisputeNotRuled(uint256 disputeId);
    error RulingNotAgainstProvider(uint256 disputeId);
    error EpochNotNext(uint256 epoch, uint256 next);
    error EpochNotEnded(uint256 epoch, uint64 end);
    error EpochNotClosed(uint256 epoch);
    error NothingToClaim(uint256 epoch, address account);
    error AlreadyClaimed(uint256 epoch, address account);

    /// @param admin Holds DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (the foundation; the DAO later).
    /// @param listingTime The genesis tokenomics listing time; epoch 0 starts 30 days later.
    /// @param slotLength_ Heartbeat slot length in seconds; divides 30 days, at least a minute.
    constructor(address admin, uint64 listingTime, uint64 slotLength_) {
        if (admin == address(0)) revert ZeroAddress();
        firstEpochStart = listingTime + uint64(EPOCH_LENGTH);
        _checkSlotLength(slotLength_);
        slotLength = slotLength_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        emit SlotLengthChanged(0, slotLength_, admin);
    }

    // ------------------------------------------------------------------ the pool

    /// @notice Add `msg.value` to the pool.
    function donate() external payable {
        _donate();
    }

    /// @notice A plain transfer is a donation.
    receive() external payable {
        _donate();
    }

    // ------------------------------------------------------------------ heartbeats

    /// @notice The owner or agent of `tokenId` reports it online in the current slot (once per
    /// slot). Counts only while the device is verified, listed by its owner and not blocked.
    function heartbeat(uint256 tokenId) external {
        uint256 epoch = currentEpoch();
        address owner = NFT.ownerOf(tokenId);
        if (msg.sender != owner && msg.sender != NFT.agentOf(tokenId)) {
            revert NotOwnerOrAgent(tokenId, msg.sender);
        }
        _checkEligible(tokenId, owner);
        Epoch storage e = _epochs[epoch];
        uint64 length = _fixSlotLength(e);
        uint32 slot = uint32((block.timestamp - epochStart(epoch)) / length);
        Device storage d = _devices[epoch][tokenId];
        if (d.lastSlot == slot + 1) revert AlreadyBeaten(tokenId, epoch, slot);
        d.lastSlot = slot + 1;
        d.heartbeats += 1;
        emit Heartbeat(epoch, tokenId, slot, msg.sender);
        if (!d.online && d.heartbeats >= requiredHeartbeats(length)) {
            d.online = true;
            uint256 points = NFT.performPointsOf(tokenId);
            bool credited = !_flagged[epoch][owner];
            if (credited) {
                _scores[epoch][owner] += points;
                e.totalScore += points;
            }
            emit DeviceOnline(epoch, tokenId, owner, points, credited);
        }
    }

    // ------------------------------------------------------------------ violations

    /// @notice A PlatformAdmin ADMIN_ROLE or FLAGGER_ROLE holder: `account` scores 0 in `epoch`
    /// (the current or an earlier epoch not closed yet).
    function flagViolation(address account, uint256 epoch, string calldata reason) external {
        if (!hasRole(FLAGGER_ROLE, msg.sender) && !_isPlatformAdmin(msg.sender)) {
            revert NotFlagger(msg.sender);
        }
        _flag(account, epoch, reason);
    }

    /// @notice Anyone: flag the provider of arbitration dispute `disputeId`, ruled with a share
    /// for the consumer (against the provider), in the epoch of the ruling.
    function flagRuling(uint256 disputeId) external returns (uint256 epoch) {
        Arbitration.Dispute memory d = ARBITRATION.disputeOf(disputeId);
        if (d.status != Arbitration.Status.Ruled) revert DisputeNotRuled(disputeId);
        if (d.consumerShare == 0) revert RulingNotAgainstProvider(disputeId);
        if (d.ruledAt < firstEpochStart) revert EpochNotStarted(0);
        epoch = (d.ruledAt - firstEpochStart) / EPOCH_LENGTH;
        _flag(d.provider, epoch, string.concat("arbitration ruling #", Strings.toString(disputeId)));
    }

    // ------------------------------------------------------------------ close and claim

    /// @notice Anyone, after `epoch` ended and every earlier epoch is closed: fix its pool.
    function close(uint256 epoch) external {
        if (epoch != nextEpochToClose) revert EpochNotNext(epoch, nextEpochToClose);
        uint64 end = epochEnd(epoch);
        if (block.timestamp < end) revert EpochNotEnded(epoch, end);
        Epoch storage e = _epochs[epoch];
        _fixSlotLength(e);
        uint256 balance = address(this).balance;
        uint256 before = reserved;
        uint256 pool = balance - before;
        e.closed = true;
        e.pool = pool;
        nextEpochToClose = epoch + 1;
        if (e.totalScore > 0) reserved = before + pool;
        emit EpochClosed(epoch, pool, e.totalScore, balance, before);
    }

    /// @notice Claim the caller's dividend of a closed epoch.
    function claim(uint256 epoch) external nonReentrant returns (uint256) {
        return _claim(epoch, msg.sender);
    }

    /// @notice Anyone: pay `account` its dividend of a closed epoch (the coin goes to it).
    function claimFor(uint256 epoch, address account) external nonReentrant returns (uint256) {
        return _claim(epoch, account);
    }

    // ------------------------------------------------------------------ governance

    /// @notice GOVERNANCE_ROLE: the slot length of every epoch from the next one on (the
    /// current epoch keeps its own).
    function setSlotLength(uint64 newLength) external onlyRole(GOVERNANCE_ROLE) {
        _checkSlotLength(newLength);
        if (block.timestamp >= firstEpochStart) _fixSlotLength(_epochs[currentEpoch()]);
        emit SlotLengthChanged(slotLength, newLength, msg.sender);
        slotLength = newLength;
    }

    // ------------------------------------------------------------------ views

    /// @notice The epoch under way (reverts NotStarted before the first).
    function currentEpoch() public view returns (uint256) {
        if (block.timestamp < firstEpochStart) revert NotStarted(firstEpochStart);
        return (block.timestamp - firstEpochStart) / EPOCH_LENGTH;
    }

    /// @notice First second of `epoch`.
    function epochStart(uint256 epoch) public view returns (uint64) {
        return uint64(firstEpochStart + epoch * EPOCH_LENGTH);
    }

    /// @notice First second after `epoch`.
    function epochEnd(uint256 epoch) public view returns (uint64) {
        return uint64(firstEpochStart + (epoch + 1) * EPOCH_LENGTH);
    }

    /// @notice Heartbeats (slots) that make a device online when slots are `length` long.
    function requiredHeartbeats(uint64 length) public pure returns (uint32) {
        uint256 slots = EPOCH_LENGTH / length;
        return uint32(Math.ceilDiv(slots * ONLINE_BPS, BPS));
    }

    /// @notice Everything about `epoch`.
    function epochInfo(uint256 epoch) external view returns (EpochView memory v) {
        Epoch storage e = _epochs[epoch];
        uint64 length = _slotLengthOf(e);
        v = EpochView({
            epoch: epoch,
            start: epochStart(epoch),
            end: epochEnd(epoch),
            slotLength: length,
            slots: uint32(EPOCH_LENGTH / length),
            required: requiredHeartbeats(length),
            closed: e.closed,
            pool: e.pool,
            totalScore: e.totalScore,
            claimedScore: e.claimedScore,
            claimedAmount: e.claimedAmount
        });
    }

    /// @notice A device's heartbeats in `epoch`: slots counted, last slot (+1; 0 for none),
    /// whether it is online.
    function deviceOf(uint256 epoch, uint256 tokenId)
        external
        view
        returns (uint32 heartbeats, uint32 lastSlot, bool online)
    {
        Device storage d = _devices[epoch][tokenId];
        return (d.heartbeats, d.lastSlot, d.online);
    }

    /// @notice `account`'s score in `epoch` (0 when flagged).
    function scoreOf(uint256 epoch, address account) external view returns (uint256) {
        return _scores[epoch][account];
    }

    /// @notice Whether `account` was flagged for a violation in `epoch`.
    function isFlagged(uint256 epoch, address account) external view returns (bool) {
        return _flagged[epoch][account];
    }

    /// @notice Whether `account` claimed its dividend of `epoch`.
    function hasClaimed(uint256 epoch, address account) external view returns (bool) {
        return _claimed[epoch][account];
    }

    /// @notice Wei `account` may claim for `epoch` now (0 before close or once claimed).
    function claimable(uint256 epoch, address account) public view returns (uint256) {
        Epoch storage e = _epochs[epoch];
        if (!e.closed || _claimed[epoch][account] || e.totalScore == 0) return 0;
        return Math.mulDiv(e.pool, _scores[epoch][account], e.totalScore);
    }

    /// @notice Wei no closed epoch owes: the pool of the next epoch to close, so far.
    function unassigned() external view returns (uint256) {
        return address(this).balance - reserved;
    }

    // ------------------------------------------------------------------ internals

    function _donate() private {
        if (msg.value == 0) revert ZeroAmount();
        emit Donated(msg.sender, msg.value);
    }

    function _claim(uint256 epoch, address account) private returns (uint256 amount) {
        if (account == address(0)) revert ZeroAddress();
        Epoch storage e = _epochs[epoch];
        if (!e.closed) revert EpochNotClosed(epoch);
        uint256 score = _scores[epoch][account];
        if (score == 0) revert NothingToClaim(epoch, account);
        if (_claimed[epoch][account]) revert AlreadyClaimed(epoch, account);
        amount = Math.mulDiv(e.pool, score, e.totalScore);
        _claimed[epoch][account] = true;
        e.claimedScore += score;
        e.claimedAmount += amount;
        uint256 released = amount;
        uint256 dust = 0;
        if (e.claimedScore == e.totalScore) {
            dust = e.pool - e.claimedAmount;
            released += dust;
        }
        reserved -= released;
        emit Claimed(epoch, account, msg.sender, amount, score);
        if (dust > 0) emit DustReleased(epoch, dust);
        Address.sendValue(payable(account), amount);
    }

    function _flag(address account, uint256 epoch, string memory reason) private {
        if (account == address(0)) revert ZeroAddress();
        uint256 length = bytes(reason).length;
        if (length == 0) revert EmptyReason();
        if (length > MAX_REASON_LENGTH) revert ReasonTooLong(length, MAX_REASON_LENGTH);
        if (block.timestamp < epochStart(epoch)) revert EpochNotStarted(epoch);
        Epoch storage e = _epochs[epoch];
        if (e.closed) revert EpochAlreadyClosed(epoch);
        if (_flagged[epoch][account]) revert AlreadyFlagged(epoch, account);
        _flagged[epoch][account] = true;
        uint256 removed = _scores[epoch][account];
        if (removed > 0) {
            _scores[epoch][account] = 0;
            e.totalScore -= removed;
        }
        emit ViolationFlagged(epoch, account, msg.sender, removed, reason);
    }

    function _checkEligible(uint256 tokenId, address owner) private view {
        if (!NFT.isVerified(tokenId)) revert ResourceNotVerified(tokenId);
        Market.Listing memory listing = MARKET.listingOf(tokenId);
        if (listing.status == Market.ListingStatus.None || listing.provider != owner) {
            revert NotListed(tokenId);
        }
        if (PLATFORM_ADMIN.isResourceBlocked(tokenId)) revert ResourceBlocked(tokenId);
        if (PLATFORM_ADMIN.isAccountBlocked(owner)) revert AccountBlocked(owner);
    }

    function _isPlatformAdmin(address account) private view returns (bool) {
        return IAccessControl(address(PLATFORM_ADMIN)).hasRole(PLATFORM_ADMIN_ROLE, account);
    }

    function _fixSlotLength(Epoch storage e) private returns (uint64 length) {
        length = e.slotLength;
        if (length == 0) {
            length = slotLength;
            e.slotLength = length;
        }
    }

    function _slotLengthOf(Epoch storage e) private view returns (uint64) {
        uint64 length = e.slotLength;
        return length == 0 ? slotLength : length;
    }

    function _checkSlotLength(uint64 length) private pure {
        if (length < MIN_SLOT_LENGTH || EPOCH_LENGTH % length != 0) revert InvalidSlotLength(length);
    }
}
