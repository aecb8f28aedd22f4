// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStakedVotes} from "./interfaces/IStakedVotes.sol";
import {SystemAddresses} from "./SystemAddresses.sol";

/// @title PowerVerse validator staking: validators, delegations, unbonding, slashing, jailing.
/// @notice Predeployed at `SystemAddresses.STAKING`. Stake is PVC, the native coin.
///
/// Accounting (Cosmos-style shares, so slashing is O(1)):
/// - Each validator has a bonded pool (`tokens` wei, `shares` outstanding) and an unbonding pool
///   (`unbondingTokens`, `unbondingShares`). A delegation is a number of bonded-pool shares; an
///   unbonding entry is a number of unbonding-pool shares. Slashing lowers both pools' tokens by
///   the same fraction, which lowers every delegation and every unbonding entry pro rata.
/// - Rounding always favours the pool: shares are minted rounded down and burned rounded up.
///   When a pool's last share leaves, its leftover dust goes to the treasury.
/// - Invariant: `address(this).balance == totalBonded + totalUnbonding + totalOwed` (more only if
///   someone forces coin in without a call, e.g. as a block's coinbase).
///
/// The validator set for consensus: `activeValidators()` (see docs/contracts.md, "Staking").
///
/// Downtime: a validator proves it takes part in consensus by submitting (itself, or anyone for
/// it) one of its signed precommits for a recent block (`proveLiveness`; the chain's vote
/// precompile checks the signature, and the block hash voted for must be the canonical one).
/// A validator with no such proof for more than `livenessWindow` blocks may be jailed by
/// anyone (`reportDowntime`); it leaves the active set until it unjails.
contract Staking is AccessControl, ReentrancyGuard {
    using SafeCast for uint256;

    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Held by the chain itself (later: a system transaction that verified the evidence).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    uint16 public constant BPS = 10_000;
    /// @notice Pending unbonding entries one delegator may have at a time (bounds `withdraw`).
    uint256 public constant MAX_UNBONDING_ENTRIES = 16;

    /// @notice Tunables; changed only by `GOVERNANCE_ROLE`.
    struct Params {
        uint256 minSelfStake; // wei; below it a validator is not in the active set
        uint64 unbondingPeriod; // seconds from undelegate to withdrawable
        uint64 jailPeriod; // seconds before a jailed validator may unjail
        uint16 maxCommissionBps; // highest commission any validator may set
        uint16 maxCommissionChangeBps; // largest change of one commission update
        uint64 commissionChangeInterval; // seconds between two commission updates
        uint32 maxValidators; // registrations allowed (bounds activeValidators)
    }

    /// @notice A validator set at genesis (its stake must be in the contract's balance).
    struct GenesisValidator {
        address account;
        bytes32 consensusKey;
        uint16 commissionBps;
        uint256 stake;
    }

    struct Validator {
        address account; // operator, fee recipient and self-delegator
        uint16 commissionBps;
        uint64 commissionUpdatedAt;
        bool jailed;
        uint64 jailedUntil;
        bytes32 consensusKey; // ed25519 public key
        uint256 tokens; // bonded wei (self + delegated, after slashes)
        uint256 shares; // bonded-pool shares outstanding
        uint256 unbondingTokens; // wei unbonding from this validator
        uint256 unbondingShares; // unbonding-pool shares outstanding
        uint256 slashed; // wei slashed so far
    }

    /// @notice What views return about one validator.
    struct ValidatorInfo {
        address account;
        bytes32 consensusKey;
        uint256 totalStake; // bonded wei
        uint256 selfStake; // the operator's own delegation, wei
        uint16 commissionBps;
        bool jailed;
        uint64 jailedUntil;
        bool active; // counted by consensus: not jailed and selfStake >= minSelfStake
        uint256 unbonding; // wei unbonding from this validator
        uint256 slashed;
    }

    struct Unbonding {
        address delegator;
        uint32 validatorId;
        uint64 completionTime;
        uint256 shares; // of the validator's unbonding pool
    }

    /// @notice An unbonding entry as views return it.
    struct UnbondingInfo {
        uint256 id;
        address validator;
        uint64 completionTime;
        uint256 amount; // current value in wei (after any slash)
    }

    Params private _params;
    address public treasury;

    Validator[] private _validators; // id = index + 1
    mapping(bytes32 consensusKey => uint256 id) private _idByKey;
    mapping(address account => uint256 id) private _idByAccount;
    mapping(uint256 id => mapping(address delegator => uint256 shares)) private _delegations;

    uint256 public nextUnbondingId = 1;
    mapping(uint256 id => Unbonding) private _unbondings;
    mapping(address delegator => uint256[] ids) private _pending;

    mapping(bytes32 evidenceHash => bool) public evidenceUsed;
    /// @notice What an equivocation proven with `submitEvidence` costs, in basis points.
    uint16 public equivocationSlashBps = 500;

    /// @notice The chain's equivocation-evidence precompile (src/powerverse/chain/evidence.py).
    address internal constant EVIDENCE_PRECOMPILE = address(0x0a00);
    bytes internal constant EVIDENCE_DOMAIN = "powerverse/equivocation/v1";
    /// @notice The chain's signed-vote precompile (src/powerverse/chain/evidence.py).
    address internal constant VOTE_PRECOMPILE = address(0x0a01);
    uint256 internal constant PRECOMMIT = 2;
    /// @notice Blocks a validator may go without a liveness proof before anyone may jail it.
    uint64 public livenessWindow = 10_000;
    mapping(uint256 id => uint64 blockNumber) private _lastLive;
    mapping(address account => uint256 amount) public owed;

    /// @notice The sender of the chain's own calls (as EIP-4788's system address): block
    /// rewards arrive as `creditRewards` from it (src/powerverse/chain/rewards.py).
    address public constant SYSTEM_CALLER = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;

    /// @notice The block proposer's part of the validators' 97% of each block reward, in basis
    /// points (the committee shares the rest by vote weight); the chain reads it when a block
    /// pays a reward (src/powerverse/chain/rewards.py). Governable.
    uint16 public rewardProposerBps = 2_000;

    uint256 public totalBonded;
    uint256 public totalUnbonding;
    uint256 public totalOwed;

    event ValidatorRegistered(
        address indexed validator, bytes32 indexed consensusKey, uint16 commissionBps, uint256 selfStake
    );
    event Delegated(address indexed validator, address indexed delegator, uint256 amount, uint256 shares);
    event Undelegated(
        address indexed validator,
        address indexed delegator,
        uint256 indexed unbondingId,
        uint256 amount,
        uint64 completionTime
    );
    event UnbondingCompleted(
        uint256 indexed unbondingId, address indexed delegator, address indexed validator, uint256 amount
    );
    event Withdrawn(address indexed account, uint256 amount);
    event CommissionChanged(address indexed validator, uint16 oldBps, uint16 newBps);
    event EvidenceSubmitted(
        address indexed submitter, bytes32 indexed consensusKey, uint256 height, bytes32 evidenceHash
    );
    event EquivocationSlashChanged(uint16 fractionBps, string reason);
    event Slashed(
        address indexed validator,
        bytes32 indexed consensusKey,
        bytes32 indexed evidenceHash,
        uint16 fractionBps,
        uint256 bondedSlashed,
        uint256 unbondingSlashed
    );
    event Jailed(address indexed validator, bytes32 indexed consensusKey, uint64 until, string reason);
    event Unjailed(address indexed validator);
    event LivenessProven(address indexed validator, bytes32 indexed consensusKey, uint256 height);
    event LivenessWindowChanged(uint64 blocks, string reason);
    event DustSwept(address indexed validator, uint256 amount);
    event ParamsChanged(Params params, string reason);
    event TreasuryChanged(address treasury, string reason);
    event RewardCredited(
        address indexed validator, bytes32 indexed consensusKey, uint256 amount, uint256 commission
    );
    event RewardToTreasury(bytes32 indexed consensusKey, uint256 amount);
    event RewardSplitChanged(uint16 proposerBps, string reason);

    error ZeroAmount();
    error ZeroAddress();
    error InvalidConsensusKey();
    error ConsensusKeyTaken(bytes32 consensusKey);
    error AlreadyValidator(address account);
    error NotValidator(address account);
    error UnknownConsensusKey(bytes32 consensusKey);
    error ValidatorIndexOutOfRange(uint256 index, uint256 count);
    error TooManyValidators(uint256 max);
    error SelfStakeTooLow(uint256 selfStake, uint256 minimum);
    error CommissionTooHigh(uint16 commissionBps, uint16 maximum);
    error CommissionChangeTooLarge(uint16 oldBps, uint16 newBps, uint16 maxChangeBps);
    error CommissionChangeTooSoon(uint64 nextAllowed);
    error InsufficientDelegation(address validator, uint256 requested, uint256 available);
    error TooManyUnbondings(address delegator, uint256 max);
    error NothingToWithdraw(address account, uint64 nextCompletion);
    error TransferFailed(address to, uint256 amount);
    error InvalidFraction(uint16 fractionBps);
    error EvidenceAlreadyUsed(bytes32 evidenceHash);
    error InvalidEvidence();
    error NotJailed(address validator);
    error AlreadyJailed(bytes32 consensusKey);
    error InvalidLivenessProof();
    error StaleLivenessProof(uint256 height);
    error NotDown(bytes32 consensusKey, uint256 liveUntil);
    error InvalidLivenessWindow(uint64 blocks);
    error JailPeriodNotOver(address validator, uint64 until);
    error InvalidParams(string what);
    error GenesisStakeMismatch(uint256 balance, uint256 stakes);
    error NotSystem(address caller);
    error LengthMismatch(uint256 keys, uint256 amounts);

    constructor(
        address admin,
        address treasury_,
        Params memory params_,
        GenesisValidator[] memory genesisValidators
    ) payable {
        if (admin == address(0) || treasury_ == address(0)) revert ZeroAddress();
        _checkParams(params_);
        _params = params_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _grantRole(SLASHER_ROLE, admin);
        uint256 sum;
        for (uint256 i = 0; i < genesisValidators.length; ++i) {
            GenesisValidator memory g = genesisValidators[i];
            _register(g.account, g.consensusKey, g.commissionBps, g.stake);
            _delegate(_idByAccount[g.account], g.account, g.stake);
            sum += g.stake;
        }
        if (address(this).balance != sum) revert GenesisStakeMismatch(address(this).balance, sum);
    }

    // ------------------------------------------------------------------ block rewards

    /// @notice The chain pays block rewards (docs/tokenomics.md, "Block rewards"): it moves the
    /// sum of `amounts` from the emission pool into this contract's balance, then calls this
    /// from `SYSTEM_CALLER`. Each validator's commission is credited to its operator (to
    /// `withdraw`); the rest is added to its bonded pool, so every delegation (the operator's
    /// own included) grows pro rata to its shares. A key no validator holds (it left) pays the
    /// treasury. At most one entry per voter of a finality certificate, so the loop is bounded.
    function creditRewards(bytes32[] calldata keys, uint256[] calldata amounts) external {
        if (msg.sender != SYSTEM_CALLER) revert NotSystem(msg.sender);
        if (keys.length != amounts.length) revert LengthMismatch(keys.length, amounts.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            uint256 amount = amounts[i];
            if (amount == 0) continue;
            uint256 id = _idByKey[keys[i]];
            if (id == 0) {
                _credit(treasury, amount);
                emit RewardToTreasury(keys[i], amount);
                continue;
            }
            Validator storage v = _validators[id - 1];
            uint256 commission = Math.mulDiv(amount, v.commissionBps, BPS);
            // with no shares outstanding there is no delegator to share with
            if (v.shares == 0) commission = amount;
            _credit(v.account, commission);
            uint256 pooled = amount - commission;
            v.tokens += pooled;
            totalBonded += pooled;
            emit RewardCredited(v.account, keys[i], amount, commission);
        }
    }

    // ------------------------------------------------------------------ validators

    /// @notice Become a validator with consensus key `consensusKey`, self-staking `msg.value`.
    function registerValidator(bytes32 consensusKey, uint16 commissionBps) external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        if (msg.value < _params.minSelfStake) revert SelfStakeTooLow(msg.value, _params.minSelfStake);
        _register(msg.sender, consensusKey, commissionBps, msg.value);
        _delegate(_idByAccount[msg.sender], msg.sender, msg.value);
    }

    /// @notice Change the caller's commission, within the maximum and the allowed rate of change.
    function setCommission(uint16 newBps) external {
        uint256 id = _requireValidator(msg.sender);
        Validator storage v = _validators[id - 1];
        Params memory p = _params;
        if (newBps > p.maxCommissionBps) revert CommissionTooHigh(newBps, p.maxCommissionBps);
        uint16 old = v.commissionBps;
        uint16 change = newBps > old ? newBps - old : old - newBps;
        if (change > p.maxCommissionChangeBps) {
            revert CommissionChangeTooLarge(old, newBps, p.maxCommissionChangeBps);
        }
        uint64 next = v.commissionUpdatedAt + p.commissionChangeInterval;
        if (block.timestamp < next) revert CommissionChangeTooSoon(next);
        v.commissionBps = newBps;
        v.commissionUpdatedAt = uint64(block.timestamp);
        emit CommissionChanged(msg.sender, old, newBps);
    }

    /// @notice Leave jail once the jail period is over (self-stake must be at the minimum).
    function unjail() external {
        uint256 id = _requireValidator(msg.sender);
        Validator storage v = _validators[id - 1];
        if (!v.jailed) revert NotJailed(msg.sender);
        if (block.timestamp < v.jailedUntil) revert JailPeriodNotOver(msg.sender, v.jailedUntil);
        uint256 self = _valueOf(v, _delegations[id][msg.sender]);
        if (self < _params.minSelfStake) revert SelfStakeTooLow(self, _params.minSelfStake);
        v.jailed = false;
        _lastLive[id] = block.number.toUint64(); // a fresh liveness window
        emit Unjailed(msg.sender);
    }

    // ------------------------------------------------------------------ delegation

    /// @notice Delegate `msg.value` to `validator` (the validator itself: add self-stake).
    function delegate(address validator) external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        _delegate(_requireValidator(validator), msg.sender, msg.value);
    }

    /// @notice Start unbonding `amount` wei of the caller's delegation to `validator`.
    /// @return unbondingId the entry, withdrawable from its completion time.
    function undelegate(address validator, uint256 amount) external nonReentrant returns (uint256 unbondingId) {
        if (amount == 0) revert ZeroAmount();
        uint256 id = _requireValidator(validator);
        Validator storage v = _validators[id - 1];
        uint256 held = _delegations[id][msg.sender];
        uint256 available = _valueOf(v, held);
        if (amount > available) revert InsufficientDelegation(validator, amount, available);
        uint256[] storage pending = _pending[msg.sender];
        if (pending.length >= MAX_UNBONDING_ENTRIES) revert TooManyUnbondings(msg.sender, MAX_UNBONDING_ENTRIES);

        // Burn bonded shares rounded up; take all of them when what is left would be worth nothing.
        uint256 burned = Math.mulDiv(amount, v.shares, v.tokens, Math.Rounding.Ceil);
        if (burned > held || _valueOf(v, held - burned) == 0) burned = held;
        _delegations[id][msg.sender] = held - burned;
        v.shares -= burned;
        v.tokens -= amount;
        totalBonded -= amount;
        _sweepBonded(v);

        // Mint unbonding-pool shares rounded down.
        uint256 minted = v.unbondingShares == 0 ? amount : Math.mulDiv(amount, v.unbondingShares, v.unbondingTokens);
        v.unbondingShares += minted;
        v.unbondingTokens += amount;
        totalUnbonding += amount;

        uint64 completion = (block.timestamp + _params.unbondingPeriod).toUint64();
        unbondingId = nextUnbondingId++;
        _unbondings[unbondingId] = Unbonding(msg.sender, id.toUint32(), completion, minted);
        pending.push(unbondingId);
        emit Undelegated(validator, msg.sender, unbondingId, amount, completion);
        if (_hasVotes()) IStakedVotes(SystemAddresses.VOTES_PVC).burnStaked(msg.sender, amount);
    }

    /// @notice Complete the caller's matured unbondings and pay everything owed to the caller.
    function withdraw() external nonReentrant returns (uint256 amount) {
        _completeMatured(msg.sender);
        amount = owed[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender, _nextCompletion(msg.sender));
        owed[msg.sender] = 0;
        totalOwed -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ------------------------------------------------------------------ slashing and jailing

    /// @notice Slash `fractionBps` of the stake bonded to and unbonding from the validator with
    /// `consensusKey` (its own and its delegators', pro rata), send it to the treasury, jail it.
    /// @dev For offences proven off chain (governance); equivocation is proven on chain with
    /// `submitEvidence`. `evidenceHash` (see docs/contracts.md) makes each offence count once.
    function slash(bytes32 consensusKey, bytes32 evidenceHash, uint16 fractionBps)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
    {
        _slash(consensusKey, evidenceHash, fractionBps);
    }

    /// @notice Anyone may submit proof that a validator signed two different values for one
    /// slot: `evidence` is RLP([first, second]) of the two signed consensus messages as
    /// `pv_getEvidence` returns them. The chain's evidence precompile checks the signatures
    /// (they name this chain and its genesis); the validator loses `equivocationSlashBps` of
    /// its bonded and unbonding stake and is jailed. Each (validator, height) counts once.
    function submitEvidence(bytes calldata evidence)
        external
        nonReentrant
        returns (bytes32 consensusKey, uint256 height)
    {
        (bool ok, bytes memory out) = EVIDENCE_PRECOMPILE.staticcall(evidence);
        if (!ok || out.length != 64) revert InvalidEvidence();
        (consensusKey, height) = abi.decode(out, (bytes32, uint256));
        bytes32 evidenceHash = keccak256(abi.encode(EVIDENCE_DOMAIN, consensusKey, height));
        _slash(consensusKey, evidenceHash, equivocationSlashBps);
        emit EvidenceSubmitted(msg.sender, consensusKey, height, evidenceHash);
    }

    /// @notice The share of stake an equivocation costs, in basis points (governable).
    /// @notice Governance: the proposer's part of block rewards (0 to 10,000 bps; default 2,000).
    function setRewardProposerBps(uint16 proposerBps, string calldata reason)
        external
        onlyRole(GOVERNANCE_ROLE)
    {
        if (proposerBps > BPS) revert InvalidParams("rewardProposerBps");
        rewardProposerBps = proposerBps;
        emit RewardSplitChanged(proposerBps, reason);
    }

    function setEquivocationSlash(uint16 fractionBps, string calldata reason)
        external
        onlyRole(GOVERNANCE_ROLE)
    {
        if (fractionBps == 0 || fractionBps >= BPS) revert InvalidFraction(fractionBps);
        equivocationSlashBps = fractionBps;
        emit EquivocationSlashChanged(fractionBps, reason);
    }

    function _slash(bytes32 consensusKey, bytes32 evidenceHash, uint16 fractionBps) private {
        if (fractionBps == 0 || fractionBps >= BPS) revert InvalidFraction(fractionBps);
        if (evidenceUsed[evidenceHash]) revert EvidenceAlreadyUsed(evidenceHash);
        uint256 id = _requireKey(consensusKey);
        evidenceUsed[evidenceHash] = true;
        Validator storage v = _validators[id - 1];
        // fraction < 1 keeps a non-empty pool's tokens above zero, so shares never lose all backing.
        uint256 bonded = Math.mulDiv(v.tokens, fractionBps, BPS);
        uint256 unbonding = Math.mulDiv(v.unbondingTokens, fractionBps, BPS);
        v.tokens -= bonded;
        v.unbondingTokens -= unbonding;
        v.slashed += bonded + unbonding;
        totalBonded -= bonded;
        totalUnbonding -= unbonding;
        _credit(treasury, bonded + unbonding);
        emit Slashed(v.account, consensusKey, evidenceHash, fractionBps, bonded, unbonding);
        _jail(v, "equivocation");
    }

    /// @notice Anyone: prove that a validator takes part in consensus with one of its signed
    /// precommits (the wire bytes of a vote from a finality certificate, `pv_getCertificate`)
    /// for a block among the last 256. Moves its liveness window forward to that block.
    function proveLiveness(bytes calldata vote) external returns (bytes32 consensusKey, uint256 height) {
        (bool ok, bytes memory out) = VOTE_PRECOMPILE.staticcall(vote);
        if (!ok || out.length != 160) revert InvalidLivenessProof();
        uint256 step;
        bytes32 value;
        (consensusKey, height,, step, value) = abi.decode(out, (bytes32, uint256, uint256, uint256, bytes32));
        if (step != PRECOMMIT) revert InvalidLivenessProof();
        // blockhash is zero for the current and future blocks and beyond the last 256
        if (height >= block.number || value == bytes32(0) || blockhash(height) != value) {
            revert StaleLivenessProof(height);
        }
        uint256 id = _requireKey(consensusKey);
        if (height > _lastLive[id]) _lastLive[id] = height.toUint64();
        emit LivenessProven(_validators[id - 1].account, consensusKey, height);
    }

    /// @notice Anyone: jail an active validator with no liveness proof for more than
    /// `livenessWindow` blocks (since its last proof, registration or unjailing).
    function reportDowntime(bytes32 consensusKey) external {
        uint256 id = _requireKey(consensusKey);
        Validator storage v = _validators[id - 1];
        if (v.jailed) revert AlreadyJailed(consensusKey);
        uint256 liveUntil = uint256(_lastLive[id]) + livenessWindow;
        if (!_isActive(v, id) || block.number <= liveUntil) revert NotDown(consensusKey, liveUntil);
        _jail(v, "downtime");
    }

    /// @notice Blocks without a liveness proof after which a validator may be jailed (governance).
    function setLivenessWindow(uint64 blocks, string calldata reason) external onlyRole(GOVERNANCE_ROLE) {
        if (blocks < 16) revert InvalidLivenessWindow(blocks);
        livenessWindow = blocks;
        emit LivenessWindowChanged(blocks, reason);
    }

    /// @notice The block of the validator's last liveness proof (or registration / unjailing),
    /// and the last block before which it cannot be jailed for downtime.
    function livenessOf(bytes32 consensusKey) external view returns (uint64 lastLive, uint256 liveUntil) {
        lastLive = _lastLive[_requireKey(consensusKey)];
        liveUntil = uint256(lastLive) + livenessWindow;
    }

    /// @notice Jail the validator with `consensusKey` (e.g. for long downtime) for the jail period.
    function jail(bytes32 consensusKey, string calldata reason) external onlyRole(SLASHER_ROLE) {
        _jail(_validators[_requireKey(consensusKey) - 1], reason);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Replace the tunables.
    function setParams(Params calldata params_, string calldata reason) external onlyRole(GOVERNANCE_ROLE) {
        _checkParams(params_);
        _params = params_;
        emit ParamsChanged(params_, reason);
    }

    /// @notice Where slashed stake and dust go.
    function setTreasury(address treasury_, string calldata reason) external onlyRole(GOVERNANCE_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasuryChanged(treasury_, reason);
    }

    // ------------------------------------------------------------------ views

    /// @notice The current tunables.
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @notice Registered validators (active or not); ids are 1..validatorCount().
    function validatorCount() external view returns (uint256) {
        return _validators.length;
    }

    /// @notice The validator at index `index` (0-based, in registration order).
    function validatorAt(uint256 index) external view returns (ValidatorInfo memory) {
        return _info(index + 1);
    }

    /// @notice The validator operated by `account`.
    function validatorOf(address account) external view returns (ValidatorInfo memory) {
        return _info(_requireValidator(account));
    }

    /// @notice The validator with consensus key `consensusKey`.
    function validatorByKey(bytes32 consensusKey) external view returns (ValidatorInfo memory) {
        return _info(_requireKey(consensusKey));
    }

    /// @notice The validator set consensus uses: every validator that is not jailed and whose
    /// self-stake is at least `minSelfStake`, in registration order, with its bonded stake in wei.
    function activeValidators()
        external
        view
        returns (address[] memory accounts, bytes32[] memory consensusKeys, uint256[] memory stakes)
    {
        uint256 n = _validators.length;
        accounts = new address[](n);
        consensusKeys = new bytes32[](n);
        stakes = new uint256[](n);
        uint256 count;
        for (uint256 id = 1; id <= n; ++id) {
            Validator storage v = _validators[id - 1];
            if (!_isActive(v, id)) continue;
            accounts[count] = v.account;
            consensusKeys[count] = v.consensusKey;
            stakes[count] = v.tokens;
            ++count;
        }
        assembly ("memory-safe") {
            mstore(accounts, count)
            mstore(consensusKeys, count)
            mstore(stakes, count)
        }
    }

    /// @notice Wei of `delegator`'s delegation to `validator` (after slashes).
    function delegationOf(address validator, address delegator) external view returns (uint256) {
        uint256 id = _idByAccount[validator];
        if (id == 0) return 0;
        return _valueOf(_validators[id - 1], _delegations[id][delegator]);
    }

    /// @notice Bonded-pool shares `delegator` holds with `validator`.
    function sharesOf(address validator, address delegator) external view returns (uint256) {
        return _delegations[_idByAccount[validator]][delegator];
    }

    /// @notice `delegator`'s pending unbonding entries with their current value.
    function unbondingsOf(address delegator) external view returns (UnbondingInfo[] memory entries) {
        uint256[] storage ids = _pending[delegator];
        entries = new UnbondingInfo[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            Unbonding storage u = _unbondings[ids[i]];
            Validator storage v = _validators[u.validatorId - 1];
            entries[i] = UnbondingInfo(ids[i], v.account, u.completionTime, _unbondingValue(v, u.shares));
        }
    }

    /// @notice What `withdraw()` would pay `account` now.
    function withdrawable(address account) external view returns (uint256 amount) {
        amount = owed[account];
        uint256[] storage ids = _pending[account];
        for (uint256 i = 0; i < ids.length; ++i) {
            Unbonding storage u = _unbondings[ids[i]];
            if (u.completionTime <= block.timestamp) {
                amount += _unbondingValue(_validators[u.validatorId - 1], u.shares);
            }
        }
    }

    // ------------------------------------------------------------------ internals

    function _register(address account, bytes32 consensusKey, uint16 commissionBps, uint256 selfStake) private {
        if (account == address(0)) revert ZeroAddress();
        if (consensusKey == bytes32(0)) revert InvalidConsensusKey();
        if (_idByKey[consensusKey] != 0) revert ConsensusKeyTaken(consensusKey);
        if (_idByAccount[account] != 0) revert AlreadyValidator(account);
        if (commissionBps > _params.maxCommissionBps) revert CommissionTooHigh(commissionBps, _params.maxCommissionBps);
        if (_validators.length >= _params.maxValidators) revert TooManyValidators(_params.maxValidators);
        _validators.push();
        Validator storage v = _validators[_validators.length - 1];
        v.account = account;
        v.consensusKey = consensusKey;
        v.commissionBps = commissionBps;
        v.commissionUpdatedAt = uint64(block.timestamp);
        uint256 id = _validators.length;
        _idByKey[consensusKey] = id;
        _idByAccount[account] = id;
        _lastLive[id] = block.number.toUint64();
        emit ValidatorRegistered(account, consensusKey, commissionBps, selfStake);
    }

    function _delegate(uint256 id, address delegator, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        Validator storage v = _validators[id - 1];
        // shares > 0 implies tokens > 0 (see slash and undelegate), so the division is safe.
        uint256 minted = v.shares == 0 ? amount : Math.mulDiv(amount, v.shares, v.tokens);
        if (minted == 0) revert ZeroAmount();
        _delegations[id][delegator] += minted;
        v.shares += minted;
        v.tokens += amount;
        totalBonded += amount;
        emit Delegated(v.account, delegator, amount, minted);
        if (_hasVotes()) IStakedVotes(SystemAddresses.VOTES_PVC).mintStaked(delegator, amount);
    }

    function _completeMatured(address delegator) private {
        uint256[] storage ids = _pending[delegator];
        uint256 i = 0;
        while (i < ids.length) {
            uint256 uid = ids[i];
            Unbonding storage u = _unbondings[uid];
            if (u.completionTime > block.timestamp) {
                ++i;
                continue;
            }
            Validator storage v = _validators[u.validatorId - 1];
            uint256 amount = _unbondingValue(v, u.shares);
            v.unbondingShares -= u.shares;
            v.unbondingTokens -= amount;
            totalUnbonding -= amount;
            _credit(delegator, amount);
            emit UnbondingCompleted(uid, delegator, v.account, amount);
            _sweepUnbonding(v);
            delete _unbondings[uid];
            ids[i] = ids[ids.length - 1];
            ids.pop();
        }
    }

    function _jail(Validator storage v, string memory reason) private {
        uint64 until = (block.timestamp + _params.jailPeriod).toUint64();
        if (until > v.jailedUntil) v.jailedUntil = until;
        v.jailed = true;
        emit Jailed(v.account, v.consensusKey, v.jailedUntil, reason);
    }

    /// @dev The last share left the bonded pool: its rounding dust goes to the treasury.
    function _sweepBonded(Validator storage v) private {
        if (v.shares != 0 || v.tokens == 0) return;
        uint256 dust = v.tokens;
        v.tokens = 0;
        totalBonded -= dust;
        _credit(treasury, dust);
        emit DustSwept(v.account, dust);
    }

    function _sweepUnbonding(Validator storage v) private {
        if (v.unbondingShares != 0 || v.unbondingTokens == 0) return;
        uint256 dust = v.unbondingTokens;
        v.unbondingTokens = 0;
        totalUnbonding -= dust;
        _credit(treasury, dust);
        emit DustSwept(v.account, dust);
    }

    /// @dev The DAO's voting power for staked PVC (VotesPVC): bonding mints it, undelegating
    /// burns it. A genesis without the DAO (and Staking's own constructor, which runs before
    /// VotesPVC exists) gets a no-op.
    function _hasVotes() private view returns (bool) {
        return SystemAddresses.VOTES_PVC.code.length != 0;
    }

    function _credit(address to, uint256 amount) private {
        if (amount == 0) return;
        owed[to] += amount;
        totalOwed += amount;
    }

    function _nextCompletion(address delegator) private view returns (uint64 next) {
        uint256[] storage ids = _pending[delegator];
        for (uint256 i = 0; i < ids.length; ++i) {
            uint64 t = _unbondings[ids[i]].completionTime;
            if (next == 0 || t < next) next = t;
        }
    }

    function _valueOf(Validator storage v, uint256 shares) private view returns (uint256) {
        if (shares == 0) return 0;
        return Math.mulDiv(shares, v.tokens, v.shares);
    }

    function _unbondingValue(Validator storage v, uint256 shares) private view returns (uint256) {
        if (shares == 0) return 0;
        return Math.mulDiv(shares, v.unbondingTokens, v.unbondingShares);
    }

    function _isActive(Validator storage v, uint256 id) private view returns (bool) {
        return !v.jailed && _valueOf(v, _delegations[id][v.account]) >= _params.minSelfStake && v.tokens > 0;
    }

    function _info(uint256 id) private view returns (ValidatorInfo memory info) {
        if (id == 0 || id > _validators.length) revert ValidatorIndexOutOfRange(id - 1, _validators.length);
        Validator storage v = _validators[id - 1];
        info.account = v.account;
        info.consensusKey = v.consensusKey;
        info.totalStake = v.tokens;
        info.selfStake = _valueOf(v, _delegations[id][v.account]);
        info.commissionBps = v.commissionBps;
        info.jailed = v.jailed;
        info.jailedUntil = v.jailedUntil;
        info.active = _isActive(v, id);
        info.unbonding = v.unbondingTokens;
        info.slashed = v.slashed;
    }

    function _requireValidator(address account) private view returns (uint256 id) {
        id = _idByAccount[account];
        if (id == 0) revert NotValidator(account);
    }

    function _requireKey(bytes32 consensusKey) private view returns (uint256 id) {
        id = _idByKey[consensusKey];
        if (id == 0) revert UnknownConsensusKey(consensusKey);
    }

    function _checkParams(Params memory p) private pure {
        if (p.maxCommissionBps > BPS) revert InvalidParams("maxCommissionBps above 10000");
        if (p.maxCommissionChangeBps > p.maxCommissionBps) {
            revert InvalidParams("maxCommissionChangeBps above maxCommissionBps");
        }
        if (p.maxValidators == 0) revert InvalidParams("maxValidators is zero");
    }
}
