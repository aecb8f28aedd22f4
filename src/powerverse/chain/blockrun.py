"""Applying one block's transactions and finalizing it: the one path for building and checking.

The proposer (choosing transactions from its pool) and every validator (re-executing a block
it received) both apply transactions through ``BlockRun``: chain/transfer.py's fast path for
plain transfers, py-evm's ``apply_transaction`` for the rest, then the same finalization. The
same transactions on the same parent therefore give the same header, byte for byte.
"""

from __future__ import annotations

from typing import Any, cast

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.vm.base import VM
from eth_typing import Hash32
from rlp.codec import encode_raw

from powerverse.chain.rewards import RewardClaim, RewardPlan, apply_rewards, plan_rewards
from powerverse.chain.transfer import apply_plain_transfer, credit, is_plain_transfer
from powerverse.chain.trie_root import ordered_trie_root, uint_bytes


class _GasUsedView:
    """A header whose gas_used is the running total of the block being built."""

    __slots__ = ("_header", "gas_used")

    def __init__(self, header: BlockHeaderAPI, gas_used: int) -> None:
        self._header = header
        self.gas_used = gas_used

    def __getattr__(self, name: str) -> Any:
        return getattr(self._header, name)


class BlockRun:
    """One block being executed on top of its parent's state, in the chain's write buffer."""

    def __init__(
        self,
        chain: MiningChain,
        header: BlockHeaderAPI,
        *,
        fast_transfers: bool,
        reward: RewardClaim | None = None,
        listing_time: int | None = None,
    ) -> None:
        self.header = header
        self.vm = cast(VM, chain.get_vm(header))
        self.block_class = self.vm.get_block_class()
        # System contract updates at the start of a block (EIP-4788, EIP-2935), exactly as
        # py-evm's import_block does, so a block we build is the block others re-execute.
        self.vm.block_preprocessing(self.block_class(header, transactions=[], uncles=[]))
        # Then the block reward it claims (chain/rewards.py), before any transaction.
        self.reward: RewardPlan | None = None
        if reward is not None and listing_time is not None:
            self.reward = plan_rewards(self.vm.state, reward, listing_time)
            if self.reward is not None:
                apply_rewards(self.vm.state, self.reward)
        self.gas_limit = int(header.gas_limit)
        self.gas_used = 0
        self.bloom = 0
        self.transactions: list[SignedTransactionAPI] = []
        self.payloads: list[bytes] = []
        self.senders: list[bytes] = []
        self.receipts: list[ReceiptAPI] = []
        self.receipt_payloads: list[bytes] = []  # filled by finish()
        self._fast = fast_transfers
        # Tips of fast-path transfers not yet credited to the fee recipient (transfer.py):
        # credited before any other transaction runs, and before finalizing.
        self._owed_fees: list[int] = []
        self._precompiles = self.vm.state.computation_class.get_precompiles()

    def apply(self, tx: SignedTransactionAPI, raw: bytes, sender: bytes) -> ReceiptAPI:
        """Apply one transaction whose canonical encoding is ``raw``.

        Raises py-evm's ``ValidationError`` for a transaction py-evm refuses (nonce, balance,
        fees, gas); it validates before touching state, so a refused one leaves nothing to undo.
        """
        # py-evm reads only gas_used (and fixed fields) from the header here; a view saves
        # copying the whole header after every transaction.
        at = cast(BlockHeaderAPI, _GasUsedView(self.header, self.gas_used))
        receipt = None
        if self._fast and is_plain_transfer(tx, self._precompiles):
            receipt = apply_plain_transfer(self.vm, at, tx, owed_fees=self._owed_fees)
        if receipt is None:
            self._pay_owed_fees()
            receipt, _computation = self.vm.apply_transaction(at, tx)
        self.gas_used = int(receipt.gas_used)
        self.bloom |= int(receipt.bloom)
        self.transactions.append(tx)
        self.payloads.append(raw)
        self.senders.append(sender)
        self.receipts.append(receipt)
        return receipt

    def _pay_owed_fees(self) -> None:
        """Credit the fee recipient the tips that fast-path transfers owe it."""
        if self._owed_fees:
            credit(self.vm.state._account_db, self.vm.state.coinbase, sum(self._owed_fees))  # type: ignore[attr-defined]
            self._owed_fees.clear()

    def finish(self, *, transaction_root: bytes | None = None) -> BlockAPI:
        """The finished block: gas used, bloom, both roots and the state root in its header.

        ``transaction_root`` is the root of ``payloads`` when the caller computed it already.
        """
        self._pay_owed_fees()
        self.receipt_payloads = [receipt_payload(r) for r in self.receipts]
        if transaction_root is None:
            transaction_root = ordered_trie_root(self.payloads)
        header = self.header.copy(
            gas_used=self.gas_used,
            bloom=self.bloom,
            transaction_root=Hash32(transaction_root),
            receipt_root=Hash32(ordered_trie_root(self.receipt_payloads)),
        )
        # As VM.finalize_block (block rewards: none under proof of stake; then the state
        # root), but building the block once: py-evm's block.copy deep-copies every
        # transaction (about 40 ms per 1,400), and mine_block would re-validate it too.
        txs = self.transactions
        block = self.block_class(header, transactions=txs, uncles=[], withdrawals=[])
        state = self.vm.state
        snapshot = state.snapshot()
        self.vm._assign_block_rewards(block)
        state.commit(snapshot)
        state.persist()
        header = header.copy(state_root=state.state_root)
        return self.block_class(header, transactions=txs, uncles=[], withdrawals=[])


def receipt_payload(receipt: ReceiptAPI) -> bytes:
    """``receipt.encode()``; a receipt without logs (every plain transfer's) is encoded
    directly, about 30 times faster than py-evm's generic serializer."""
    inner = getattr(receipt, "_inner", receipt)  # a typed receipt wraps a legacy-shaped one
    if inner.logs:
        return bytes(receipt.encode())
    body: bytes = encode_raw(
        [inner.state_root, uint_bytes(inner.gas_used), inner.bloom.to_bytes(256, "big"), []]
    )
    if inner is receipt:
        return body
    type_id: int = receipt.type_id  # type: ignore[attr-defined]
    return bytes([type_id]) + body
