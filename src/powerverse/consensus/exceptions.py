"""Errors of the consensus layer.

ConsensusError
├── SortitionError      bad input to sortition (also a ValueError)
├── MalformedMessage    bytes that are not a well-formed consensus message
├── InvalidMessage      a well-formed message that fails its checks (signature, credential...)
└── InvalidCertificate  a finality certificate that does not prove its block
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Base class of every consensus-layer error."""


class SortitionError(ConsensusError, ValueError):
    """Sortition was given a bad argument (negative stake, w > W, a hash of the wrong length...)."""


class MalformedMessage(ConsensusError):
    """Bytes that do not decode to a consensus message."""


class InvalidMessage(ConsensusError):
    """A decoded message that fails a check: signature, sortition credential, role or height."""


class InvalidCertificate(ConsensusError):
    """A finality certificate that does not carry a quorum of valid precommits for its block."""
