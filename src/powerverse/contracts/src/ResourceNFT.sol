// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

import {IPlatformAdmin} from "./interfaces/IPlatformAdmin.sol";
import {SystemAddresses} from "./SystemAddresses.sol";

/// @title PowerVerse resource certificate (whitepaper 5.2): one ERC-721 token per virtual resource.
/// @notice Flow: the provider calls `register`, which mints an UNVERIFIED token to them
/// (performPoints 0); a VERIFIER_ROLE holder checks the provider agent's signed benchmark
/// evidence off chain and calls `verify(tokenId, evidenceHash)`, which computes performPoints
/// from the on-chain weights; only verified tokens can be listed or rented. A verifier may
/// re-verify at any time (`verify` again with new evidence, or `flag` to withdraw the
/// certification). Changing the parameters sends the token back to Pending.
/// Units: clock speeds and memory frequency in MHz; GPU memory and RAM in MiB; disk size in GB
/// (10^9 bytes); disk read/write speeds in MB/s (10^6 bytes/s); coordinates in microdegrees
/// (degrees × 10^6, WGS 84); prices in wei per day; times in unix seconds.
/// Rental info is written only by MARKET_ROLE (Market and Orders); a rented token cannot be
/// transferred, and only the contract that marked it rented can release it.
contract ResourceNFT is ERC721, AccessControl {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant VERIFIER_ROLE = keccak256("VERIFIER_ROLE");
    bytes32 public constant MARKET_ROLE = keccak256("MARKET_ROLE");

    /// @notice Weights are milli-points per unit: performPoints = Σ value × weight / WEIGHT_SCALE.
    uint256 public constant WEIGHT_SCALE = 1000;
    uint256 public constant MAX_METADATA_LENGTH = 256;
    uint256 public constant MAX_MODEL_LENGTH = 64;
    uint256 public constant MAX_REGION_LENGTH = 64;
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    uint256 public constant MAX_REASON_LENGTH = 512;
    int32 public constant MAX_LATITUDE = 90_000_000;
    int32 public constant MAX_LONGITUDE = 180_000_000;

    enum RentalStatus {
        Available,
        Rented
    }

    enum VerificationStatus {
        Pending,
        Verified,
        Flagged
    }

    /// @notice Whitepaper `rentalinfo`. `period` in days (0 for task orders), `start`/`end` unix
    /// seconds, `rentedBy` is the contract (Market or Orders) that holds the rental.
    struct RentalInfo {
        RentalStatus status;
        address lessee;
        uint128 pricePerDay;
        uint32 period;
        uint64 start;
        uint64 end;
        address rentedBy;
    }

    /// @notice `clockSpeed` MHz, `cores` count.
    struct Cpu {
        string model;
        uint32 clockSpeed;
        uint32 cores;
    }

    /// @notice Per card: `memorySize` MiB (whitepaper gpu.memory), `cudaCores` count; `count` cards (0 = no GPU).
    struct Gpu {
        string model;
        uint32 memorySize;
        uint32 cudaCores;
        uint32 count;
    }

    /// @notice Whitepaper `memory` (a Solidity keyword, hence `Ram`): `size` MiB, `frequency` MHz.
    struct Ram {
        uint32 size;
        uint32 frequency;
    }

    /// @notice Whitepaper disk `type` (e.g. "nvme", "ssd", "hdd") as `kind`; `size` GB;
    /// `readSpeed`/`writeSpeed` MB/s.
    struct Disk {
        string kind;
        uint32 size;
        uint32 readSpeed;
        uint32 writeSpeed;
    }

    /// @notice Whitepaper `performpara`.
    struct PerformPara {
        Cpu cpu;
        Gpu gpu;
        Ram ram;
        Disk disk;
    }

    /// @notice `region` free text (e.g. "cn-east", "eu-west"); latitude/longitude microdegrees.
    struct Location {
        string region;
        int32 latitude;
        int32 longitude;
    }

    struct Verification {
        VerificationStatus status;
        address verifier;
        uint64 at;
        bytes32 evidenceHash;
    }

    /// @notice Everything stored for one token (the owner is `ownerOf`).
    struct Resource {
        string metadata;
        RentalInfo rentalInfo;
        uint256 performPoints;
        PerformPara performPara;
        Location location;
        string agentEndpoint;
        address agent;
        Verification verification;
        uint64 registeredAt;
    }

    /// @notice Milli-points per unit of each numeric parameter. GPU memory and CUDA cores are
    /// counted over all cards (per-card value × count).
    struct Weights {
        uint64 cpuClockSpeed;
        uint64 cpuCores;
        uint64 gpuMemory;
        uint64 gpuCudaCores;
        uint64 gpuCount;
        uint64 ramSize;
        uint64 ramFrequency;
        uint64 diskSize;
        uint64 diskReadSpeed;
        uint64 diskWriteSpeed;
    }

    uint256 private _nextTokenId = 1;
    Weights private _weights;
    mapping(uint256 tokenId => Resource) private _resources;

    event ResourceRegistered(uint256 indexed tokenId, address indexed owner, string metadata);
    event PerformParaUpdated(uint256 indexed tokenId);
    event MetadataUpdated(uint256 indexed tokenId, string metadata);
    event LocationUpdated(uint256 indexed tokenId, string region, int32 latitude, int32 longitude);
    event AgentUpdated(uint256 indexed tokenId, address indexed agent, string endpoint);
    event ResourceVerified(
        uint256 indexed tokenId, address indexed verifier, bytes32 evidenceHash, uint256 performPoints
    );
    event ResourceFlagged(
        uint256 indexed tokenId, address indexed verifier, bytes32 evidenceHash, string reason
    );
    event PerformPointsUpdated(uint256 indexed tokenId, uint256 oldPoints, uint256 newPoints);
    event WeightsUpdated(address indexed by, Weights weights);
    event RentalInfoUpdated(
        uint256 indexed tokenId,
        RentalStatus status,
        address indexed lessee,
        uint128 pricePerDay,
        uint32 period,
        uint64 start,
        uint64 end,
        address indexed rentedBy
    );

    error ZeroAccount();
    error NotResourceOwner(uint256 tokenId, address caller);
    error AccountBlocked(address account);
    error EmptyField(string field);
    error StringTooLong(string field, uint256 length, uint256 max);
    error InvalidPerformPara(string field);
    error InvalidCoordinates(int32 latitude, int32 longitude);
    error EmptyEvidence();
    error ResourceNotVerified(uint256 tokenId);
    error ResourceAlreadyRented(uint256 tokenId);
    error ResourceNotRented(uint256 tokenId);
    error NotRentalHolder(uint256 tokenId, address caller, address holder);
    error TransferOfRentedResource(uint256 tokenId);
    error InvalidRentalTerm(uint64 start, uint64 end);

    /// @param foundation receives DEFAULT_ADMIN_ROLE, GOVERNANCE_ROLE and VERIFIER_ROLE;
    /// MARKET_ROLE goes to SystemAddresses.MARKET and SystemAddresses.ORDERS.
    constructor(address foundation) ERC721("PowerVerse Resource", "PVR") {
        if (foundation == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, foundation);
        _grantRole(GOVERNANCE_ROLE, foundation);
        _grantRole(VERIFIER_ROLE, foundation);
        _grantRole(MARKET_ROLE, SystemAddresses.MARKET);
        _grantRole(MARKET_ROLE, SystemAddresses.ORDERS);
        _weights = Weights({
            cpuClockSpeed: 100, // 3,000 MHz -> 300 points
            cpuCores: 50_000, // 16 cores -> 800
            gpuMemory: 100, // 24,576 MiB -> 2,457
            gpuCudaCores: 200, // 16,384 cores -> 3,276
            gpuCount: 500_000, // 1 card -> 500
            ramSize: 20, // 65,536 MiB -> 1,310
            ramFrequency: 50, // 3,200 MHz -> 160
            diskSize: 100, // 1,000 GB -> 100
            diskReadSpeed: 100, // 3,500 MB/s -> 350
            diskWriteSpeed: 100 // 3,000 MB/s -> 300
        });
    }

    // ------------------------------------------------------------------ provider

    /// @notice Register a resource: mints an unverified token to the caller.
    /// @param agent the provider agent's key, allowed to post heartbeats (may be zero).
    function register(
        string calldata metadata,
        PerformPara calldata para,
        Location calldata location,
        string calldata agentEndpoint,
        address agent
    ) external returns (uint256 tokenId) {
        _checkAccount(msg.sender);
        _checkMetadata(metadata);
        _checkPerformPara(para);
        _checkLocation(location);
        _checkLength("agentEndpoint", agentEndpoint, MAX_ENDPOINT_LENGTH);
        tokenId = _nextTokenId++;
        Resource storage r = _resources[tokenId];
        r.metadata = metadata;
        r.performPara = para;
        r.location = location;
        r.agentEndpoint = agentEndpoint;
        r.agent = agent;
        r.registeredAt = uint64(block.timestamp);
        _mint(msg.sender, tokenId);
        emit ResourceRegistered(tokenId, msg.sender, metadata);
        emit LocationUpdated(tokenId, location.region, location.latitude, location.longitude);
        emit AgentUpdated(tokenId, agent, agentEndpoint);
    }

    /// @notice Replace the technical parameters; the token goes back to Pending verification.
    function updatePerformPara(uint256 tokenId, PerformPara calldata para) external {
        Resource storage r = _ownedResource(tokenId);
        if (r.rentalInfo.status == RentalStatus.Rented) revert ResourceAlreadyRented(tokenId);
        _checkPerformPara(para);
        r.performPara = para;
        uint256 old = r.performPoints;
        r.performPoints = 0;
        r.verification = Verification(VerificationStatus.Pending, address(0), 0, bytes32(0));
        emit PerformParaUpdated(tokenId);
        if (old != 0) emit PerformPointsUpdated(tokenId, old, 0);
    }

    /// @notice Replace the metadata (URI or content id).
    function setMetadata(uint256 tokenId, string calldata metadata) external {
        Resource storage r = _ownedResource(tokenId);
        _checkMetadata(metadata);
        r.metadata = metadata;
        emit MetadataUpdated(tokenId, metadata);
    }

    /// @notice Replace the location.
    function setLocation(uint256 tokenId, Location calldata location) external {
        Resource storage r = _ownedResource(tokenId);
        _checkLocation(location);
        r.location = location;
        emit LocationUpdated(tokenId, location.region, location.latitude, location.longitude);
    }

    /// @notice Replace the agent's endpoint and heartbeat key.
    function setAgent(uint256 tokenId, string calldata agentEndpoint, address agent) external {
        Resource storage r = _ownedResource(tokenId);
        _checkLength("agentEndpoint", agentEndpoint, MAX_ENDPOINT_LENGTH);
        r.agentEndpoint = agentEndpoint;
        r.agent = agent;
        emit AgentUpdated(tokenId, agent, agentEndpoint);
    }

    // ------------------------------------------------------------------ verifier

    /// @notice Attest the parameters of `tokenId` with the hash of the benchmark evidence;
    /// computes performPoints with the current weights. Also used to re-verify.
    function verify(uint256 tokenId, bytes32 evidenceHash) external onlyRole(VERIFIER_ROLE) {
        Resource storage r = _existing(tokenId);
        if (evidenceHash == bytes32(0)) revert EmptyEvidence();
        r.verification =
            Verification(VerificationStatus.Verified, msg.sender, uint64(block.timestamp), evidenceHash);
        uint256 old = r.performPoints;
        uint256 points = score(r.performPara);
        r.performPoints = points;
        emit ResourceVerified(tokenId, msg.sender, evidenceHash, points);
        if (old != points) emit PerformPointsUpdated(tokenId, old, points);
    }

    /// @notice Withdraw the certification of `tokenId` (re-verification failed): it can no
    /// longer be listed or rented (a running rental goes on; the consumer may dispute it).
    function flag(uint256 tokenId, bytes32 evidenceHash, string calldata reason)
        external
        onlyRole(VERIFIER_ROLE)
    {
        Resource storage r = _existing(tokenId);
        if (bytes(reason).length == 0) revert EmptyField("reason");
        _checkLength("reason", reason, MAX_REASON_LENGTH);
        r.verification =
            Verification(VerificationStatus.Flagged, msg.sender, uint64(block.timestamp), evidenceHash);
        uint256 old = r.performPoints;
        r.performPoints = 0;
        emit ResourceFlagged(tokenId, msg.sender, evidenceHash, reason);
        if (old != 0) emit PerformPointsUpdated(tokenId, old, 0);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Replace the scoring weights (existing scores change on `rescore` or re-verify).
    function setWeights(Weights calldata newWeights) external onlyRole(GOVERNANCE_ROLE) {
        _weights = newWeights;
        emit WeightsUpdated(msg.sender, newWeights);
    }

    /// @notice Recompute the performPoints of a verified token with the current weights (anyone).
    function rescore(uint256 tokenId) external {
        Resource storage r = _existing(tokenId);
        if (r.verification.status != VerificationStatus.Verified) revert ResourceNotVerified(tokenId);
        uint256 old = r.performPoints;
        uint256 points = score(r.performPara);
        if (old != points) {
            r.performPoints = points;
            emit PerformPointsUpdated(tokenId, old, points);
        }
    }

    // ------------------------------------------------------------------ market

    /// @notice Mark `tokenId` rented by `lessee` (MARKET_ROLE); the caller becomes the holder.
    function markRented(
        uint256 tokenId,
        address lessee,
        uint128 pricePerDay,
        uint32 period,
        uint64 start,
        uint64 end
    ) external onlyRole(MARKET_ROLE) {
        Resource storage r = _existing(tokenId);
        if (r.verification.status != VerificationStatus.Verified) revert ResourceNotVerified(tokenId);
        if (r.rentalInfo.status == RentalStatus.Rented) revert ResourceAlreadyRented(tokenId);
        if (lessee == address(0)) revert ZeroAccount();
        if (end < start) revert InvalidRentalTerm(start, end);
        r.rentalInfo = RentalInfo(RentalStatus.Rented, lessee, pricePerDay, period, start, end, msg.sender);
        _emitRental(tokenId, r.rentalInfo);
    }

    /// @notice Change the term of the running rental (confirmation, extension); holder only.
    function updateRentalTerm(uint256 tokenId, uint32 period, uint64 start, uint64 end)
        external
        onlyRole(MARKET_ROLE)
    {
        RentalInfo storage info = _heldRental(tokenId);
        if (end < start) revert InvalidRentalTerm(start, end);
        info.period = period;
        info.start = start;
        info.end = end;
        _emitRental(tokenId, info);
    }

    /// @notice The rental ended: `tokenId` is available again; holder only.
    function markAvailable(uint256 tokenId) external onlyRole(MARKET_ROLE) {
        _heldRental(tokenId);
        delete _resources[tokenId].rentalInfo;
        _emitRental(tokenId, _resources[tokenId].rentalInfo);
    }

    // ------------------------------------------------------------------ views

    /// @notice The owner and every stored field of `tokenId`.
    function resourceOf(uint256 tokenId) external view returns (address owner, Resource memory resource) {
        owner = _requireOwned(tokenId);
        resource = _resources[tokenId];
    }

    /// @notice Whitepaper `rentalinfo` of `tokenId`.
    function rentalInfoOf(uint256 tokenId) external view returns (RentalInfo memory) {
        _requireOwned(tokenId);
        return _resources[tokenId].rentalInfo;
    }

    /// @notice Whitepaper `performpara` of `tokenId`.
    function performParaOf(uint256 tokenId) external view returns (PerformPara memory) {
        _requireOwned(tokenId);
        return _resources[tokenId].performPara;
    }

    /// @notice Certified score of `tokenId` (0 unless verified).
    function performPointsOf(uint256 tokenId) external view returns (uint256) {
        _requireOwned(tokenId);
        return _resources[tokenId].performPoints;
    }

    /// @notice Verification record of `tokenId`.
    function verificationOf(uint256 tokenId) external view returns (Verification memory) {
        _requireOwned(tokenId);
        return _resources[tokenId].verification;
    }

    /// @notice True when `tokenId` exists and is verified.
    function isVerified(uint256 tokenId) external view returns (bool) {
        return _ownerOf(tokenId) != address(0)
            && _resources[tokenId].verification.status == VerificationStatus.Verified;
    }

    /// @notice True when `tokenId` is rented (by Market or Orders).
    function isRented(uint256 tokenId) external view returns (bool) {
        return _resources[tokenId].rentalInfo.status == RentalStatus.Rented;
    }

    /// @notice The agent key allowed to post heartbeats for `tokenId`.
    function agentOf(uint256 tokenId) external view returns (address) {
        return _resources[tokenId].agent;
    }

    /// @notice Current scoring weights.
    function weights() external view returns (Weights memory) {
        return _weights;
    }

    /// @notice Number of tokens registered so far (ids are 1..totalRegistered).
    function totalRegistered() external view returns (uint256) {
        return _nextTokenId - 1;
    }

    /// @notice performPoints of `para` under the current weights.
    function score(PerformPara memory para) public view returns (uint256) {
        Weights memory w = _weights;
        uint256 gpus = para.gpu.count;
        uint256 total = uint256(para.cpu.clockSpeed) * w.cpuClockSpeed
            + uint256(para.cpu.cores) * w.cpuCores
            + uint256(para.gpu.memorySize) * gpus * w.gpuMemory
            + uint256(para.gpu.cudaCores) * gpus * w.gpuCudaCores
            + gpus * w.gpuCount
            + uint256(para.ram.size) * w.ramSize
            + uint256(para.ram.frequency) * w.ramFrequency
            + uint256(para.disk.size) * w.diskSize
            + uint256(para.disk.readSpeed) * w.diskReadSpeed
            + uint256(para.disk.writeSpeed) * w.diskWriteSpeed;
        return total / WEIGHT_SCALE;
    }

    /// @notice The metadata (URI or content id) of `tokenId`.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        return _resources[tokenId].metadata;
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Refuses transfers (not mints) of a rented token.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        address from = _ownerOf(tokenId);
        if (from != address(0) && _resources[tokenId].rentalInfo.status == RentalStatus.Rented) {
            revert TransferOfRentedResource(tokenId);
        }
        return super._update(to, tokenId, auth);
    }

    function _existing(uint256 tokenId) private view returns (Resource storage) {
        _requireOwned(tokenId);
        return _resources[tokenId];
    }

    function _ownedResource(uint256 tokenId) private view returns (Resource storage) {
        if (_requireOwned(tokenId) != msg.sender) revert NotResourceOwner(tokenId, msg.sender);
        return _resources[tokenId];
    }

    function _heldRental(uint256 tokenId) private view returns (RentalInfo storage info) {
        info = _existing(tokenId).rentalInfo;
        if (info.status != RentalStatus.Rented) revert ResourceNotRented(tokenId);
        if (info.rentedBy != msg.sender) revert NotRentalHolder(tokenId, msg.sender, info.rentedBy);
    }

    function _emitRental(uint256 tokenId, RentalInfo storage info) private {
        emit RentalInfoUpdated(
            tokenId, info.status, info.lessee, info.pricePerDay, info.period, info.start, info.end, info.rentedBy
        );
    }

    function _checkAccount(address account) private view {
        address admin = SystemAddresses.PLATFORM_ADMIN;
        if (admin.code.length > 0 && IPlatformAdmin(admin).isAccountBlocked(account)) {
            revert AccountBlocked(account);
        }
    }

    function _checkMetadata(string calldata metadata) private pure {
        if (bytes(metadata).length == 0) revert EmptyField("metadata");
        _checkLength("metadata", metadata, MAX_METADATA_LENGTH);
    }

    function _checkPerformPara(PerformPara calldata p) private pure {
        if (p.cpu.cores == 0 || p.cpu.clockSpeed == 0) revert InvalidPerformPara("cpu");
        _checkLength("cpu.model", p.cpu.model, MAX_MODEL_LENGTH);
        if (p.gpu.count == 0) {
            if (p.gpu.memorySize != 0 || p.gpu.cudaCores != 0 || bytes(p.gpu.model).length != 0) {
                revert InvalidPerformPara("gpu");
            }
        } else if (p.gpu.memorySize == 0) {
            revert InvalidPerformPara("gpu");
        }
        _checkLength("gpu.model", p.gpu.model, MAX_MODEL_LENGTH);
        if (p.ram.size == 0) revert InvalidPerformPara("ram");
        if (p.disk.size == 0) revert InvalidPerformPara("disk");
        _checkLength("disk.kind", p.disk.kind, MAX_MODEL_LENGTH);
    }

    function _checkLocation(Location calldata l) private pure {
        if (l.latitude < -MAX_LATITUDE || l.latitude > MAX_LATITUDE || l.longitude < -MAX_LONGITUDE
                || l.longitude > MAX_LONGITUDE) {
            revert InvalidCoordinates(l.latitude, l.longitude);
        }
        _checkLength("region", l.region, MAX_REGION_LENGTH);
    }

    function _checkLength(string memory field, string calldata value, uint256 max) private pure {
        if (bytes(value).length > max) revert StringTooLong(field, bytes(value).length, max);
    }
}
