"""Virtual resources as ResourceNFT tokens: register, verify, score, read (whitepaper 5.2).

A provider registers a resource with its technical parameters (`PerformPara`), location and
agent; the token is minted unverified. A verifier attests the parameters with the hash of the
agent's signed benchmark evidence, and the contract computes ``performPoints`` as the weighted
sum of the numeric parameters (weights on chain, set by governance). Units: MHz for clock
speeds and RAM frequency, MiB for GPU memory and RAM, GB for disks, MB/s for disk speeds,
microdegrees for coordinates (docs/contracts.md, "ResourceNFT").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from web3.contract import Contract

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "ZERO_ADDRESS",
    "Cpu",
    "Disk",
    "Gpu",
    "Location",
    "PerformPara",
    "Ram",
    "Registered",
    "RentalInfo",
    "RentalStatus",
    "Resource",
    "Resources",
    "Verification",
    "VerificationStatus",
    "Verified",
    "Weights",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MICRO = 1_000_000


class RentalStatus(IntEnum):
    """`ResourceNFT.RentalStatus`."""

    AVAILABLE = 0
    RENTED = 1


class VerificationStatus(IntEnum):
    """`ResourceNFT.VerificationStatus`."""

    PENDING = 0
    VERIFIED = 1
    FLAGGED = 2


@dataclass(frozen=True, kw_only=True)
class Cpu:
    """CPU model, clock speed (MHz) and core count."""

    model: str
    clock_speed_mhz: int
    cores: int


@dataclass(frozen=True, kw_only=True)
class Gpu:
    """GPU model, per-card memory (MiB) and CUDA cores, and the number of cards (0 = none)."""

    model: str = ""
    memory_mib: int = 0
    cuda_cores: int = 0
    count: int = 0


@dataclass(frozen=True, kw_only=True)
class Ram:
    """Main memory size (MiB) and frequency (MHz)."""

    size_mib: int
    frequency_mhz: int


@dataclass(frozen=True, kw_only=True)
class Disk:
    """Disk type ("nvme", "ssd", "hdd", ...), size (GB) and read/write speeds (MB/s)."""

    kind: str
    size_gb: int
    read_mbps: int
    write_mbps: int


@dataclass(frozen=True, kw_only=True)
class PerformPara:
    """The whitepaper's `performpara` (the contract calls memory `ram`)."""

    cpu: Cpu
    ram: Ram
    disk: Disk
    gpu: Gpu = Gpu()

    def to_abi(self) -> tuple[Any, ...]:
        """The `ResourceNFT.PerformPara` tuple (field order cpu, gpu, ram, disk)."""
        return (astuple(self.cpu), astuple(self.gpu), astuple(self.ram), astuple(self.disk))

    @classmethod
    def from_abi(cls, row: Sequence[Any]) -> PerformPara:
        """Parse a `ResourceNFT.PerformPara` tuple."""
        cpu, gpu, ram, disk = row
        return cls(
            cpu=Cpu(model=cpu[0], clock_speed_mhz=int(cpu[1]), cores=int(cpu[2])),
            gpu=Gpu(
                model=gpu[0], memory_mib=int(gpu[1]), cuda_cores=int(gpu[2]), count=int(gpu[3])
            ),
            ram=Ram(size_mib=int(ram[0]), frequency_mhz=int(ram[1])),
            disk=Disk(
                kind=disk[0], size_gb=int(disk[1]), read_mbps=int(disk[2]), write_mbps=int(disk[3])
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Location:
    """Region name and WGS 84 coordinates in microdegrees (degrees × 10^6)."""

    region: str
    latitude_e6: int
    longitude_e6: int

    @classmethod
    def from_degrees(cls, region: str, latitude: float, longitude: float) -> Location:
        """Build from decimal degrees (rounded to the microdegree)."""
        return cls(
            region=region,
            latitude_e6=round(latitude * MICRO),
            longitude_e6=round(longitude * MICRO),
        )

    @property
    def latitude(self) -> float:
        """Latitude in degrees."""
        return self.latitude_e6 / MICRO

    @property
    def longitude(self) -> float:
        """Longitude in degrees."""
        return self.longitude_e6 / MICRO

    def to_abi(self) -> tuple[str, int, int]:
        """The `ResourceNFT.Location` tuple."""
        return (self.region, self.latitude_e6, self.longitude_e6)


@dataclass(frozen=True, kw_only=True)
class RentalInfo:
    """The whitepaper's `rentalinfo`; `period_days` 0 for task orders; `rented_by` the holder."""

    status: RentalStatus
    lessee: str
    price_per_day: int
    period_days: int
    start: int
    end: int
    rented_by: str

    @classmethod
    def from_abi(cls, row: Sequence[Any]) -> RentalInfo:
        """Parse a `ResourceNFT.RentalInfo` tuple."""
        status, lessee, price, period, start, end, rented_by = row
        return cls(
            status=RentalStatus(status),
            lessee=str(lessee),
            price_per_day=int(price),
            period_days=int(period),
            start=int(start),
            end=int(end),
            rented_by=str(rented_by),
        )


@dataclass(frozen=True, kw_only=True)
class Verification:
    """Who attested the parameters, when, and the hash of the evidence."""

    status: VerificationStatus
    verifier: str
    at: int
    evidence_hash: bytes


@dataclass(frozen=True, kw_only=True)
class Resource:
    """Everything the chain holds about one resource token."""

    token_id: int
    owner: str
    metadata: str
    rental: RentalInfo
    perform_points: int
    perform_para: PerformPara
    location: Location
    agent_endpoint: str
    agent: str
    verification: Verification
    registered_at: int

    @property
    def verified(self) -> bool:
        """True when the parameters are currently certified."""
        return self.verification.status is VerificationStatus.VERIFIED

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (wei as decimal strings, hashes as 0x hex)."""
        return {
            "tokenId": self.token_id,
            "owner": self.owner,
            "metadata": self.metadata,
            "rental": {
                "status": self.rental.status.name.lower(),
                "lessee": self.rental.lessee,
                "pricePerDay": str(self.rental.price_per_day),
                "periodDays": self.rental.period_days,
                "start": self.rental.start,
                "end": self.rental.end,
                "rentedBy": self.rental.rented_by,
            },
            "performPoints": self.perform_points,
            "performPara": {
                "cpu": vars(self.perform_para.cpu),
                "gpu": vars(self.perform_para.gpu),
                "ram": vars(self.perform_para.ram),
                "disk": vars(self.perform_para.disk),
            },
            "location": {
                "region": self.location.region,
                "latitude": self.location.latitude,
                "longitude": self.location.longitude,
            },
            "agentEndpoint": self.agent_endpoint,
            "agent": self.agent,
            "verification": {
                "status": self.verification.status.name.lower(),
                "verifier": self.verification.verifier,
                "at": self.verification.at,
                "evidenceHash": "0x" + self.verification.evidence_hash.hex(),
            },
            "registeredAt": self.registered_at,
        }


@dataclass(frozen=True, kw_only=True)
class Weights:
    """Milli-points per unit of each parameter (GPU memory and CUDA cores over all cards)."""

    cpu_clock_speed: int
    cpu_cores: int
    gpu_memory: int
    gpu_cuda_cores: int
    gpu_count: int
    ram_size: int
    ram_frequency: int
    disk_size: int
    disk_read_speed: int
    disk_write_speed: int

    def to_abi(self) -> tuple[int, ...]:
        """The `ResourceNFT.Weights` tuple."""
        return astuple(self)


@dataclass(frozen=True, kw_only=True)
class Registered:
    """A resource registered: its new token id."""

    tx: TxInfo
    token_id: int


@dataclass(frozen=True, kw_only=True)
class Verified:
    """A resource verified: the performPoints the contract computed."""

    tx: TxInfo
    token_id: int
    perform_points: int


class Resources:
    """The ResourceNFT contract for one client (provider, verifier, governance or reader)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract: Contract = client.contract("ResourceNFT")

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def _tx(self, fn: Any) -> tuple[TxInfo, dict[str, Any]]:
        receipt = self.client.transact(fn)
        return TxInfo.from_receipt(receipt), receipt

    # ------------------------------------------------------------------ provider

    def register(
        self,
        metadata: str,
        para: PerformPara,
        location: Location,
        *,
        agent_endpoint: str = "",
        agent: str | None = None,
    ) -> Registered:
        """Mint an unverified token for a resource; `agent` may post heartbeats for it."""
        fn = self._fn.register(
            metadata,
            para.to_abi(),
            location.to_abi(),
            agent_endpoint,
            to_checksum_address(agent or ZERO_ADDRESS),
        )
        tx, receipt = self._tx(fn)
        (event,) = self.client.events(self.contract, "ResourceRegistered", receipt)
        return Registered(tx=tx, token_id=int(event["tokenId"]))

    def update_perform_para(self, token_id: int, para: PerformPara) -> TxInfo:
        """Replace the parameters; the token needs verifying again."""
        return self._tx(self._fn.updatePerformPara(token_id, para.to_abi()))[0]

    def set_metadata(self, token_id: int, metadata: str) -> TxInfo:
        """Replace the metadata (URI or content id)."""
        return self._tx(self._fn.setMetadata(token_id, metadata))[0]

    def set_location(self, token_id: int, location: Location) -> TxInfo:
        """Replace the location."""
        return self._tx(self._fn.setLocation(token_id, location.to_abi()))[0]

    def set_agent(self, token_id: int, endpoint: str, agent: str | None) -> TxInfo:
        """Replace the agent endpoint and the key allowed to post heartbeats."""
        return self._tx(
            self._fn.setAgent(token_id, endpoint, to_checksum_address(agent or ZERO_ADDRESS))
        )[0]

    def transfer(self, token_id: int, to: str) -> TxInfo:
        """Transfer the token (refused while it is rented)."""
        fn = self._fn.transferFrom(self.client.address, to_checksum_address(to), token_id)
        return self._tx(fn)[0]

    # ------------------------------------------------------------------ verifier, governance

    def verify(self, token_id: int, evidence_hash: bytes) -> Verified:
        """Attest the parameters (VERIFIER_ROLE); returns the computed performPoints."""
        _check_hash(evidence_hash)
        tx, receipt = self._tx(self._fn.verify(token_id, evidence_hash))
        (event,) = self.client.events(self.contract, "ResourceVerified", receipt)
        return Verified(tx=tx, token_id=token_id, perform_points=int(event["performPoints"]))

    def flag(self, token_id: int, evidence_hash: bytes, reason: str) -> TxInfo:
        """Withdraw the certification (VERIFIER_ROLE)."""
        _check_hash(evidence_hash)
        return self._tx(self._fn.flag(token_id, evidence_hash, reason))[0]

    def set_weights(self, weights: Weights) -> TxInfo:
        """Replace the scoring weights (GOVERNANCE_ROLE)."""
        return self._tx(self._fn.setWeights(weights.to_abi()))[0]

    def rescore(self, token_id: int) -> TxInfo:
        """Recompute a verified token's performPoints with the current weights (anyone)."""
        return self._tx(self._fn.rescore(token_id))[0]

    # ------------------------------------------------------------------ reads

    def get(self, token_id: int) -> Resource:
        """Everything stored for `token_id`."""
        owner, row = self.client.call(self._fn.resourceOf(token_id))
        metadata, rental, points, para, location, endpoint, agent, verification, registered = row
        status, verifier, at, evidence = verification
        region, lat, lon = location
        return Resource(
            token_id=token_id,
            owner=str(owner),
            metadata=str(metadata),
            rental=RentalInfo.from_abi(rental),
            perform_points=int(points),
            perform_para=PerformPara.from_abi(para),
            location=Location(region=region, latitude_e6=int(lat), longitude_e6=int(lon)),
            agent_endpoint=str(endpoint),
            agent=str(agent),
            verification=Verification(
                status=VerificationStatus(status),
                verifier=str(verifier),
                at=int(at),
                evidence_hash=bytes(evidence),
            ),
            registered_at=int(registered),
        )

    def rental_info(self, token_id: int) -> RentalInfo:
        """The whitepaper `rentalinfo` of `token_id`."""
        return RentalInfo.from_abi(self.client.call(self._fn.rentalInfoOf(token_id)))

    def owner_of(self, token_id: int) -> str:
        """The token's owner."""
        return str(self.client.call(self._fn.ownerOf(token_id)))

    def is_verified(self, token_id: int) -> bool:
        """True when `token_id` exists and is verified."""
        return bool(self.client.call(self._fn.isVerified(token_id)))

    def score(self, para: PerformPara) -> int:
        """performPoints `para` would get under the current weights."""
        return int(self.client.call(self._fn.score(para.to_abi())))

    def weights(self) -> Weights:
        """The current scoring weights."""
        values = self.client.call(self._fn.weights())
        return Weights(**{f.name: int(v) for f, v in zip(fields(Weights), values, strict=True)})

    def total_registered(self) -> int:
        """Tokens registered so far (ids 1..n)."""
        return int(self.client.call(self._fn.totalRegistered()))


def _check_hash(value: bytes) -> None:
    if len(value) != 32:
        raise MarketError(f"an evidence hash is 32 bytes, got {len(value)}")
