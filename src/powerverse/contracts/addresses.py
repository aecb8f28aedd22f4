"""The fixed addresses of the system contracts and allocations (no py-evm import: the SDK and
the command line use them without loading the chain).

`powerverse.contracts.system` builds and deploys these at genesis and re-exports every name.
"""

from __future__ import annotations

__all__ = [
    "AIRDROP",
    "ARBITRATION",
    "DAO_ADDRESSES",
    "DAO_GOVERNOR",
    "DAO_PROJECTS",
    "DAO_PROPOSALS",
    "DAO_TIMELOCK",
    "DID_REGISTRY",
    "DIVIDEND_POOL",
    "EMISSION_POOL",
    "MARKET",
    "ORDERS",
    "PLATFORM_ADMIN",
    "REPUTATION",
    "RESOURCE_NFT",
    "REVIEW_COMMITTEE",
    "STAKING",
    "SYSTEM_ADDRESSES",
    "TOKENOMICS_ADDRESSES",
    "VOTES_PVC",
]


def _system_address(n: int) -> bytes:
    return n.to_bytes(20, "big")


STAKING = _system_address(0x1000)
RESOURCE_NFT = _system_address(0x1001)
MARKET = _system_address(0x1002)
ORDERS = _system_address(0x1003)
REPUTATION = _system_address(0x1004)
ARBITRATION = _system_address(0x1005)
DID_REGISTRY = _system_address(0x1006)
PLATFORM_ADMIN = _system_address(0x1007)
VOTES_PVC = _system_address(0x3000)
DAO_TIMELOCK = _system_address(0x3001)
DAO_GOVERNOR = _system_address(0x3002)
REVIEW_COMMITTEE = _system_address(0x3003)
DAO_PROPOSALS = _system_address(0x3004)
DAO_PROJECTS = _system_address(0x3005)

DAO_ADDRESSES: dict[str, bytes] = {
    "VotesPVC": VOTES_PVC,
    "DaoTimelock": DAO_TIMELOCK,
    "DaoGovernor": DAO_GOVERNOR,
    "ReviewCommittee": REVIEW_COMMITTEE,
    "DaoProposals": DAO_PROPOSALS,
    "DaoProjects": DAO_PROJECTS,
}
"""The DAO's contracts (docs/dao.md), predeployed in every genesis at 0x…3000 upward."""

SYSTEM_ADDRESSES: dict[str, bytes] = {
    "Staking": STAKING,
    "ResourceNFT": RESOURCE_NFT,
    "Market": MARKET,
    "Orders": ORDERS,
    "Reputation": REPUTATION,
    "Arbitration": ARBITRATION,
    "DIDRegistry": DID_REGISTRY,
    "PlatformAdmin": PLATFORM_ADMIN,
    **DAO_ADDRESSES,
}
"""Contract name -> fixed address (docs/contracts.md; SystemAddresses.sol has the same)."""

EMISSION_POOL = _system_address(0x2000)
"""A plain account (no code) holding block_rewards; the chain pays block rewards from it."""
AIRDROP = _system_address(0x2005)
TOKENOMICS_ADDRESSES: dict[str, bytes] = {
    "block_rewards": EMISSION_POOL,
    "seed": _system_address(0x2001),
    "angel": _system_address(0x2002),
    "series_a": _system_address(0x2003),
    "presale": _system_address(0x2004),
    "airdrop": AIRDROP,
    "team": _system_address(0x2006),
    "compliance_advisors": _system_address(0x2007),
    "operations_advisors": _system_address(0x2008),
    "foundation": _system_address(0x2009),
}
"""Allocation name -> where it lies at genesis (docs/tokenomics.md). Every vested allocation is a
`Vesting` contract, `airdrop` the `Airdrop`."""
DIVIDEND_POOL = _system_address(0x200A)
"""The `DividendPool` (monthly dividends, docs/tokenomics.md): the chain credits 3 % of every block
reward to it; deployed with the tokenomics contracts, holding nothing at genesis."""
