"""A validator that sees an equivocation proves it on chain itself (Staking.submitEvidence).

Sent with the validator's account key through :mod:`powerverse.node.system_tx` (dry-run first,
so evidence someone else already submitted, a chain without a Staking contract, or an account
without funds for gas costs nothing).
"""

from __future__ import annotations

import logging

import rlp
from eth_abi.abi import encode as abi_encode

from powerverse.contracts.system import STAKING
from powerverse.node.service import Node
from powerverse.node.system_tx import has_code, selector, send_system_tx

__all__ = ["SUBMIT_GAS", "submit_evidence"]

log = logging.getLogger(__name__)

_SUBMIT = selector("submitEvidence(bytes)")
SUBMIT_GAS = 600_000


def submit_evidence(node: Node, account_key: bytes, messages: list[bytes]) -> bytes | None:
    """Send Staking.submitEvidence(RLP(messages)); the transaction hash, or None if skipped."""
    if not has_code(node, STAKING):
        return None
    data = _SUBMIT + abi_encode(["bytes"], [rlp.encode(messages)])
    tx_hash = send_system_tx(node, account_key, STAKING, data, SUBMIT_GAS, "equivocation evidence")
    if tx_hash is not None:
        log.warning("submitted equivocation evidence in transaction 0x%s", tx_hash.hex())
    return tx_hash
