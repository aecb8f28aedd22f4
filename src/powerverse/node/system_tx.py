"""Transactions a validator node sends to the system contracts on its own (evidence, liveness).

Each is dry-run on the head state first, so a call that would revert (already done, no Staking
contract, no funds for gas) costs nothing; then it is signed with the validator's account key and
enters the node's own pool (and from there the network) like any client transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_typing import Address
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import CallRequest
from powerverse.chain.exceptions import ChainError
from powerverse.chain.txpool_errors import TxPoolError
from powerverse.node.service import Node

__all__ = ["call_view", "has_code", "selector", "send_system_tx"]

log = logging.getLogger(__name__)

_TIP = 10**9


def selector(signature: str) -> bytes:
    """The 4-byte function selector of ``signature``."""
    return keccak(text=signature)[:4]


def has_code(node: Node, address: bytes) -> bool:
    """Whether a contract is deployed at ``address`` in the head state."""
    chain = node.chain
    return bool(chain.state_at(chain.head).get_code(Address(address)))


def call_view(node: Node, to: bytes, data: bytes, types: list[str]) -> tuple[Any, ...] | None:
    """Decoded result of a read-only call on the head state, or None if it reverts."""
    chain = node.chain
    comp = chain.execute_call(CallRequest(to=to, data=data, gas=5_000_000), chain.head)
    if comp.is_error:
        return None
    return tuple(abi_decode(types, bytes(comp.output)))


def send_system_tx(
    node: Node, account_key: bytes, to: bytes, data: bytes, gas: int, what: str
) -> bytes | None:
    """Dry-run, sign and pool a call from the validator's account; its hash, or None if skipped."""
    chain = node.chain
    head = chain.head
    account = Account.from_key(account_key)
    sender = bytes.fromhex(account.address[2:])
    dry = chain.execute_call(CallRequest(sender=sender, to=to, data=data, gas=gas), head)
    if dry.is_error:
        log.info("%s not sent: the dry run failed (%r)", what, dry.error)
        return None
    base = node.next_base_fee()
    tx = {
        "type": 2,
        "chainId": chain.chain_id,
        "nonce": node.pending_nonce(sender),
        "to": "0x" + to.hex(),
        "value": 0,
        "data": data,
        "gas": gas,
        "maxFeePerGas": 2 * base + _TIP,
        "maxPriorityFeePerGas": _TIP,
    }
    raw = bytes(account.sign_transaction(tx).raw_transaction)
    try:
        node.submit_raw(raw)
    except (ChainError, TxPoolError, ValueError) as exc:
        log.warning("%s not sent: %s", what, exc)
        return None
    return keccak(raw)
