"""A validator that sees an equivocation proves it on chain itself (Staking.submitEvidence).

The transaction is signed with the validator's account key and enters the node's own pool (and
from there the network) like any client transaction. It is dry-run first on the head state, so
evidence someone else already submitted, a chain without a Staking contract, or an account
without funds for gas costs nothing.
"""

from __future__ import annotations

import logging

import rlp
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_typing import Address
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import CallRequest
from powerverse.chain.exceptions import ChainError
from powerverse.chain.txpool_errors import TxPoolError
from powerverse.contracts.system import STAKING
from powerverse.node.service import Node

__all__ = ["SUBMIT_GAS", "submit_evidence"]

log = logging.getLogger(__name__)

_SUBMIT = keccak(text="submitEvidence(bytes)")[:4]
SUBMIT_GAS = 600_000
_TIP = 10**9


def submit_evidence(node: Node, account_key: bytes, messages: list[bytes]) -> bytes | None:
    """Send Staking.submitEvidence(RLP(messages)); the transaction hash, or None if skipped."""
    chain = node.chain
    head = chain.head
    if not chain.state_at(head).get_code(Address(STAKING)):
        return None
    account = Account.from_key(account_key)
    sender = bytes.fromhex(account.address[2:])
    data = _SUBMIT + abi_encode(["bytes"], [rlp.encode(messages)])
    dry = chain.execute_call(
        CallRequest(sender=sender, to=STAKING, data=data, gas=SUBMIT_GAS), head
    )
    if dry.is_error:
        log.info("equivocation evidence not submitted: the dry run failed (%r)", dry.error)
        return None
    base = node.next_base_fee()
    tx = {
        "type": 2,
        "chainId": chain.chain_id,
        "nonce": node.pending_nonce(sender),
        "to": "0x" + STAKING.hex(),
        "value": 0,
        "data": data,
        "gas": SUBMIT_GAS,
        "maxFeePerGas": 2 * base + _TIP,
        "maxPriorityFeePerGas": _TIP,
    }
    raw = bytes(account.sign_transaction(tx).raw_transaction)
    try:
        node.submit_raw(raw)
    except (ChainError, TxPoolError, ValueError) as exc:
        log.warning("equivocation evidence not submitted: %s", exc)
        return None
    tx_hash = keccak(raw)
    log.warning("submitted equivocation evidence in transaction 0x%s", tx_hash.hex())
    return tx_hash
