"""Listings for the matching engine, read from the chain through the SDK.

For every token 1..`ResourceNFT.totalRegistered()` that the Market lists (status ACTIVE or
PAUSED): the Market listing (price, window, period bounds), the ResourceNFT record
(performPoints, performPara, location, verification, rental info), the PlatformAdmin flags of
the token and of its provider, and the provider's `Reputation.reputationOf`.

How chain state maps onto a matching `Listing`:
- verified: the token's verification status is VERIFIED;
- frozen: the token or the provider is frozen or blacklisted;
- paused: the listing is PAUSED, or the token is rented with its end still unknown (a
  rental awaiting the provider's confirmation);
- a rented token with a known end is available from that end (within its window);
- disk kind strings: containing "nvme" → NVMe, "ssd" → SSD, anything else → HDD;
- times beyond 2^63 - 1 (e.g. "forever" as uint64 max) are clamped to 2^63 - 1.

`refresh` re-reads some tokens into an index (after the chain's events name them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from powerverse.market.admin import Admin
from powerverse.market.client import ChainClient
from powerverse.market.matching_index import ListingIndex
from powerverse.market.matching_model import (
    INT63_MAX,
    REPUTATION_MAX,
    Coordinates,
    Cpu,
    Disk,
    DiskType,
    Gpu,
    InvalidListingError,
    Listing,
    Memory,
    Specs,
)
from powerverse.market.rentals import Listing as MarketListing
from powerverse.market.rentals import ListingStatus, Rentals
from powerverse.market.resources import RentalStatus, Resource, Resources

__all__ = ["ChainListings", "disk_type", "to_listing"]

log = logging.getLogger(__name__)


def disk_type(kind: str) -> DiskType:
    """The matching disk class of a ResourceNFT disk kind string."""
    text = kind.casefold()
    if "nvme" in text:
        return DiskType.NVME
    if "ssd" in text:
        return DiskType.SSD
    return DiskType.HDD


def _clamp(value: int) -> int:
    return max(0, min(INT63_MAX, value))


def to_listing(
    resource: Resource,
    market: MarketListing,
    *,
    reputation: int,
    blocked: bool,
) -> Listing | None:
    """A matching Listing from chain records; None when the Market does not list the token."""
    if market.status is ListingStatus.NONE:
        return None
    para = resource.perform_para
    available_from = _clamp(market.available_from)
    available_until = max(available_from, _clamp(market.available_until))
    pending = False
    if resource.rental.status is RentalStatus.RENTED:
        if resource.rental.end:
            available_from = min(available_until, max(available_from, _clamp(resource.rental.end)))
        else:
            pending = True
    return Listing(
        token_id=resource.token_id,
        provider=market.provider,
        price_per_day=market.price_per_day,
        available_from=available_from,
        available_until=available_until,
        min_days=market.min_days,
        max_days=market.max_days,
        perform_points=_clamp(resource.perform_points),
        specs=Specs(
            Cpu(para.cpu.model, _clamp(para.cpu.clock_speed_mhz), _clamp(para.cpu.cores)),
            Gpu(
                para.gpu.model,
                _clamp(para.gpu.memory_mib),
                _clamp(para.gpu.cuda_cores),
                _clamp(para.gpu.count),
            ),
            Memory(_clamp(para.ram.size_mib), _clamp(para.ram.frequency_mhz)),
            Disk(
                disk_type(para.disk.kind),
                _clamp(para.disk.size_gb),
                _clamp(para.disk.read_mbps),
                _clamp(para.disk.write_mbps),
            ),
        ),
        region=resource.location.region,
        coordinates=Coordinates(resource.location.latitude_e6, resource.location.longitude_e6),
        reputation=max(0, min(REPUTATION_MAX, reputation)),
        verified=resource.verified,
        frozen=blocked,
        paused=market.status is ListingStatus.PAUSED or pending,
    )


class ChainListings:
    """Reads listings from a node: all at once, or some tokens again into an index."""

    def __init__(self, client: ChainClient) -> None:
        self.resources = Resources(client)
        self.market = Rentals(client)
        self.admin = Admin(client)
        self.reputation = client.contract("Reputation")
        self.client = client
        self._providers: dict[str, tuple[int, bool]] = {}

    def _provider(self, address: str) -> tuple[int, bool]:
        """(reputation, blocked) of a provider, read once per load."""
        found = self._providers.get(address)
        if found is None:
            rep = int(self.client.call(self.reputation.functions.reputationOf(address)))
            found = (rep, self.admin.account_status(address).blocked)
            self._providers[address] = found
        return found

    def read(self, token_id: int) -> Listing | None:
        """The listing of one token, or None when it is not listed (or its record is invalid)."""
        market = self.market.listing(token_id)
        if market.status is ListingStatus.NONE:
            return None
        resource = self.resources.get(token_id)
        reputation, provider_blocked = self._provider(market.provider)
        blocked = provider_blocked or self.admin.resource_status(token_id).blocked
        try:
            return to_listing(resource, market, reputation=reputation, blocked=blocked)
        except InvalidListingError as exc:
            log.warning("token %d skipped: %s", token_id, exc)
            return None

    def load(self) -> list[Listing]:
        """Every listed token, in token id order."""
        self._providers.clear()
        total = self.resources.total_registered()
        found = (self.read(token_id) for token_id in range(1, total + 1))
        return [x for x in found if x is not None]

    def index(self) -> ListingIndex:
        """A ListingIndex of every listed token."""
        return ListingIndex(self.load())

    def refresh(self, index: ListingIndex, token_ids: Iterable[int]) -> None:
        """Re-read `token_ids` into `index`: updated, added, or removed when no longer listed."""
        self._providers.clear()
        for token_id in token_ids:
            listing = self.read(token_id)
            if listing is not None:
                index.upsert(listing)
            elif token_id in index:
                index.remove(token_id)
