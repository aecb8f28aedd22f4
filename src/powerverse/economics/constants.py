"""Units and fixed figures of the PowerVerse supply (issue 6). Amounts in wei, times in seconds."""

from __future__ import annotations

from typing import Final

PVC: Final = 10**18
"""One PowerVerse Coin in wei (18 decimals)."""

DAY: Final = 86_400
MONTH: Final = 30 * DAY
"""A tokenomics month: 30 days = 2,592,000 s."""

TOTAL_SUPPLY: Final = 1_400_000_000 * PVC
"""Every coin that will ever exist: the genesis balances plus the emission pool."""

HALVING_PERIOD: Final = 1_826 * DAY
"""Length of one emission period; the next period emits half as much."""

EMISSION_DELAY: Final = 30 * DAY
"""Block rewards start this long after the listing time."""
