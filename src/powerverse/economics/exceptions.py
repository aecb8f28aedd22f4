"""Errors of the economics layer.

EconomicsError
├── UnknownAllocation   (a name that is not in the allocation table)
└── ScheduleError       (a time or schedule request that makes no sense)
"""

from __future__ import annotations


class EconomicsError(ValueError):
    """Base class of every economics-layer error."""


class UnknownAllocation(EconomicsError):
    """The allocation name is not one of `allocations.ALLOCATION_NAMES`."""


class ScheduleError(EconomicsError):
    """Times out of order, or installments asked of an allocation that has none."""
