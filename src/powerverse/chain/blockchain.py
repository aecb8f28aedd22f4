"""The chain: py-evm (Prague rules) over the persistent store, with block building and queries.

Blocks use the Ethereum header, so `parentHash`, `timestamp` and
`transactionsRoot` are the whitepaper's PrevHash, Timestamp and TxRoot. The fee
recipient (`coinbase`) is the block's proposer. Each block is committed in one
atomic store transaction (see `store.py`), so a killed node restarts at the last
whole block.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import rlp
from eth import constants
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
    VirtualMachineAPI,
)
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.db.schema import SchemaV1
from eth.exceptions import HeaderNotFound, Revert
from eth.exceptions import TransactionNotFound as EvmTxNotFound
from eth.rlp.sedes import chain_gaps
from eth.typing import AccountDetails
from eth.vm.base import VM
from eth.vm.forks.prague import PragueVM
from eth_hash.auto import keccak
from eth_typing import Address, BlockNumber, Hash32
from eth_utils.exceptions import ValidationError

from powerverse.chain.exceptions import (
    BlockNotFound,
    ChainError,
    ExecutionError,
    GenesisError,
    Reverted,
    TransactionNotFound,
)
from powerverse.chain.genesis import Genesis
from powerverse.chain.store import BufferedStore, LmdbStore
from powerverse.chain.transfer import apply_plain_transfer, is_plain_transfer
from powerverse.chain.trie_root import ordered_trie_root

if TYPE_CHECKING:
    from powerverse.chain.txpool import PooledTx

log = logging.getLogger(__name__)

_GENESIS_KEY = b"pv:genesis-hash"
_RECEIPTS_PREFIX = b"pv:receipts:"
_BLOCK_META_PREFIX = b"pv:blockmeta:"
_BODY_PREFIX = b"pv:body:"
_BUNDLE_CACHE = 256


class PowerVerseVM(PragueVM):
    """Prague rules; proof-of-stake, so no block reward from the EVM (rewards come later)."""


def _chain_class(chain_id: int) -> type[MiningChain]:
    return MiningChain.configure(
        __name__="PowerVerseChain",
        vm_configuration=((constants.GENESIS_BLOCK_NUMBER, PowerVerseVM),),
        chain_id=chain_id,
    )


@dataclass(frozen=True)
class BuiltBlock:
    """A block just committed, with its receipts and what the builder rejected."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    senders: tuple[bytes, ...]
    rejected: tuple[tuple[bytes, str], ...]  # (transaction hash, why it was left out)


class _GasUsedView:
    """A header whose gas_used is the running total of the block being built."""

    __slots__ = ("_header", "gas_used")

    def __init__(self, header: BlockHeaderAPI, gas_used: int) -> None:
        self._header = header
        self.gas_used = gas_used

    def __getattr__(self, name: str) -> Any:
        return getattr(self._header, name)


@dataclass(frozen=True)
class BlockBundle:
    """A stored block with what RPC needs beside it."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    senders: tuple[bytes, ...]


@dataclass(frozen=True)
class CallRequest:
    """An unsigned message for eth_call / eth_estimateGas."""

    sender: bytes = b"\x00" * 20
    to: bytes | None = None
    gas: int | None = None
    gas_price: int = 0
    value: int = 0
    data: bytes = b""


def genesis_params(genesis: Genesis) -> dict[str, Any]:
    """py-evm header parameters of block 0."""
    return {
        "timestamp": genesis.timestamp,
        "gas_limit": genesis.gas_limit,
        "extra_data": genesis.extra_data,
        "difficulty": 0,
        "base_fee_per_gas": genesis.base_fee,
        "coinbase": constants.ZERO_ADDRESS,
        "nonce": b"\x00" * 8,
    }


def genesis_state(genesis: Genesis) -> dict[Address, AccountDetails]:
    """py-evm state dict of block 0."""
    return {
        Address(addr): {
            "balance": acct.balance,
            "nonce": acct.nonce,
            "code": acct.code,
            "storage": dict(acct.storage),
        }
        for addr, acct in genesis.alloc.items()
    }


def genesis_hash(genesis: Genesis) -> bytes:
    """The hash block 0 of `genesis` has (computed in memory)."""
    chain = _chain_class(genesis.chain_id).from_genesis(
        AtomicDB(MemoryDB()), genesis_params(genesis), genesis_state(genesis)
    )
    return bytes(chain.get_canonical_head().hash)


class Blockchain:
    """One chain over one data directory: build and commit blocks, answer queries."""

    def __init__(
        self,
        store: LmdbStore,
        genesis: Genesis,
        *,
        writer: bool = True,
        fast_transfers: bool = True,
    ) -> None:
        self.genesis = genesis
        # Plain value transfers skip py-evm's message machinery (chain/transfer.py); False
        # sends every transaction through py-evm, for differential tests.
        self.fast_transfers = fast_transfers
        self.chain_id = genesis.chain_id
        self.store = store
        self.db = BufferedStore(store)
        self._atomic = AtomicDB(self.db)
        chain_class = _chain_class(genesis.chain_id)
        stored = store.get(_GENESIS_KEY)
        self.chain: MiningChain
        if stored is None:
            self.chain = cast(
                MiningChain,
                chain_class.from_genesis(
                    self._atomic, genesis_params(genesis), genesis_state(genesis)
                ),
            )
            self.db.set(_GENESIS_KEY, bytes(self.chain.get_canonical_head().hash))
            self.db.commit()
            log.info("initialized a new chain with id %d", genesis.chain_id)
        else:
            expected = genesis_hash(genesis)
            if stored != expected:
                raise GenesisError(
                    f"the data directory holds a chain with genesis 0x{stored.hex()}, "
                    f"but the given genesis hashes to 0x{expected.hex()}; "
                    "use another --data-dir or the genesis this chain was made with"
                )
            self.chain = chain_class(self._atomic)
        self.genesis_hash = bytes(self.chain.chaindb.get_canonical_block_hash(BlockNumber(0)))
        # Blocks are built and committed through a second chain object with its own write
        # buffer, so readers (RPC) only ever see committed data and can run while a block is
        # being built in another thread.
        self.writer = writer
        self._wdb = BufferedStore(store)
        self._wchain = chain_class(AtomicDB(self._wdb)) if writer else self.chain
        self._bundles: OrderedDict[bytes, BlockBundle] = OrderedDict()

    # ---------------------------------------------------------------- head and blocks

    @property
    def head(self) -> BlockHeaderAPI:
        """The canonical head header."""
        return self.chain.get_canonical_head()

    @property
    def height(self) -> int:
        """The number of the head block."""
        return int(self.head.block_number)

    def header_by_number(self, number: int) -> BlockHeaderAPI:
        """Canonical header at `number`."""
        try:
            return self.chain.get_canonical_block_header_by_number(BlockNumber(number))
        except HeaderNotFound:
            raise BlockNotFound(f"no block with number {number}") from None

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        """Header with that hash (canonical or not)."""
        try:
            return self.chain.get_block_header_by_hash(Hash32(block_hash))
        except HeaderNotFound:
            raise BlockNotFound(f"no block with hash 0x{block_hash.hex()}") from None

    def is_canonical(self, header: BlockHeaderAPI) -> bool:
        """Whether `header` is on the canonical chain."""
        try:
            return bool(
                self.chain.chaindb.get_canonical_block_hash(header.block_number) == header.hash
            )
        except HeaderNotFound:
            return False

    def bundle(self, header: BlockHeaderAPI) -> BlockBundle:
        """Block, receipts and senders of a header, cached (they never change for a hash)."""
        key = bytes(header.hash)
        found = self._bundles.get(key)
        if found is not None:
            return found
        found = BlockBundle(
            self.block_by_header(header), self.receipts(header), self.senders(header)
        )
        self._bundles[key] = found
        while len(self._bundles) > _BUNDLE_CACHE:
            self._bundles.popitem(last=False)
        return found

    def block_by_header(self, header: BlockHeaderAPI) -> BlockAPI:
        """The whole block of a header (bodies are stored by us, not as py-evm tx tries)."""
        vm_class = self.chain.get_vm_class_for_block_number(header.block_number)
        raw = self.store.get(_BODY_PREFIX + bytes(header.hash))
        decode = vm_class.get_transaction_builder().decode
        txs = [decode(item) for item in rlp.decode(raw)] if raw else []
        return vm_class.get_block_class()(header, transactions=txs, uncles=[], withdrawals=[])

    def receipts(self, header: BlockHeaderAPI) -> tuple[ReceiptAPI, ...]:
        """The receipts of a block, in transaction order."""
        raw = self.store.get(_RECEIPTS_PREFIX + bytes(header.hash))
        if raw is None:
            return ()
        vm_class = self.chain.get_vm_class_for_block_number(header.block_number)
        decoder = vm_class.get_receipt_builder()
        return tuple(decoder.decode(item) for item in rlp.decode(raw))

    def senders(self, header: BlockHeaderAPI) -> tuple[bytes, ...]:
        """The senders of a block's transactions, in order (stored, not recovered)."""
        raw = self.store.get(_BLOCK_META_PREFIX + bytes(header.hash))
        if raw is None:
            return ()
        return tuple(rlp.decode(raw))

    def transaction_location(self, tx_hash: bytes) -> tuple[int, int]:
        """(block number, index) of a canonical transaction."""
        try:
            number, index = self.chain.chaindb.get_transaction_index(Hash32(tx_hash))
        except EvmTxNotFound:
            raise TransactionNotFound(f"no transaction 0x{tx_hash.hex()}") from None
        return int(number), int(index)

    # ---------------------------------------------------------------- state

    def state_at(self, header: BlockHeaderAPI) -> StateAPI:
        """The state after block `header` (read-only use)."""
        return self.chain.get_vm(header).state

    def get_balance(self, address: bytes, header: BlockHeaderAPI | None = None) -> int:
        """Balance in wei."""
        return int(self.state_at(header or self.head).get_balance(Address(address)))

    def get_nonce(self, address: bytes, header: BlockHeaderAPI | None = None) -> int:
        """Account nonce."""
        return int(self.state_at(header or self.head).get_nonce(Address(address)))

    # ---------------------------------------------------------------- block building

    def build_block(
        self,
        candidates: Iterable[PooledTx],
        *,
        timestamp: int,
        coinbase: bytes,
        mix_hash: bytes = b"\x00" * 32,
        extra_data: bytes = b"",
    ) -> BuiltBlock:
        """Apply as many candidates as fit, then finalize, persist and commit one block."""
        self._require_writer()
        parent = self._wchain.get_canonical_head()
        if timestamp <= parent.timestamp:
            timestamp = parent.timestamp + 1
        header = self._wchain.create_header_from_parent(
            parent,
            timestamp=timestamp,
            coinbase=Address(coinbase),
            mix_hash=Hash32(mix_hash),
            extra_data=extra_data,
        )
        vm = cast(VM, self._wchain.get_vm(header))
        block_class = vm.get_block_class()
        # System contract updates at the start of a block (EIP-4788, EIP-2935), exactly as
        # py-evm's import_block does, so a block we build is the block others re-execute.
        vm.block_preprocessing(block_class(header, transactions=[], uncles=[]))
        txs: list[SignedTransactionAPI] = []
        senders: list[bytes] = []
        receipts: list[ReceiptAPI] = []
        rejected: list[tuple[bytes, str]] = []
        skipped: set[bytes] = set()
        tx_payloads: list[bytes] = []
        gas_used = 0
        bloom = 0
        limit = int(header.gas_limit)
        precompiles = vm.state.computation_class.get_precompiles()
        try:
            for ptx in candidates:
                if ptx.sender in skipped:
                    continue
                if gas_used + ptx.tx.gas > limit:
                    skipped.add(ptx.sender)
                    if limit - gas_used < 21_000:
                        break
                    continue
                try:
                    # py-evm reads only gas_used (and fixed fields) from the header here;
                    # a view saves copying the whole header after every transaction.
                    at = cast(BlockHeaderAPI, _GasUsedView(header, gas_used))
                    receipt = None
                    if self.fast_transfers and is_plain_transfer(ptx.tx, precompiles):
                        receipt = apply_plain_transfer(vm, at, ptx.tx)
                    if receipt is None:
                        receipt, _computation = vm.apply_transaction(at, ptx.tx)
                except ValidationError as exc:
                    # py-evm validates (nonce, balance, fees, gas) before touching state,
                    # so a refused transaction left nothing to undo.
                    rejected.append((ptx.hash, str(exc)))
                    skipped.add(ptx.sender)
                    continue
                gas_used = int(receipt.gas_used)
                bloom |= int(receipt.bloom)
                txs.append(ptx.tx)
                tx_payloads.append(ptx.raw)  # strict RLP decoding: raw is the canonical encoding
                senders.append(ptx.sender)
                receipts.append(receipt)
            header = header.copy(gas_used=gas_used, bloom=bloom)
            receipt_payloads = [r.encode() for r in receipts]
            header = header.copy(
                transaction_root=Hash32(ordered_trie_root(tx_payloads)),
                receipt_root=Hash32(ordered_trie_root(receipt_payloads)),
            )
            # As VM.finalize_block (block rewards: none under proof of stake; then the state
            # root), but building the block once: py-evm's block.copy deep-copies every
            # transaction (about 40 ms per 1,400), and mine_block would re-validate it too.
            block = block_class(header, transactions=txs, uncles=[], withdrawals=[])
            snapshot = vm.state.snapshot()
            vm._assign_block_rewards(block)
            vm.state.commit(snapshot)
            vm.state.persist()
            header = header.copy(state_root=vm.state.state_root)
            mined = block_class(header, transactions=txs, uncles=[], withdrawals=[])
            self._wchain.chaindb.persist_block(mined)
            block_hash = bytes(mined.hash)
            self._wdb.set(_BODY_PREFIX + block_hash, rlp.encode(tx_payloads))
            self._wdb.set(_RECEIPTS_PREFIX + block_hash, rlp.encode(receipt_payloads))
            self._wdb.set(_BLOCK_META_PREFIX + block_hash, rlp.encode(senders))
            self._wdb.commit()
        except BaseException:
            self._wdb.discard()
            raise
        self._wchain.header = self._wchain.create_header_from_parent(mined.header)
        return BuiltBlock(mined, tuple(receipts), tuple(senders), tuple(rejected))

    def rewind_to(self, number: int) -> None:
        """Make block `number` the head again (dev-mode snapshots only)."""
        self._require_writer()
        target = self.header_by_number(number)
        head = self._wchain.get_canonical_head()
        try:
            chaindb = self._wchain.chaindb
            for n in range(head.block_number, number, -1):
                h = self._wchain.get_canonical_block_header_by_number(BlockNumber(n))
                for tx_hash in self._tx_hashes(h):
                    chaindb._remove_transaction_from_canonical_chain(  # type: ignore[attr-defined]
                        self._wdb, tx_hash
                    )
                self._wdb.delete(chaindb_number_key(n))
            self._wdb.set(b"v1:canonical_head_hash", bytes(target.hash))
            # py-evm tracks which block numbers it holds ("gaps"); the tip is now target + 1.
            gaps = rlp.encode(((), number + 1), sedes=chain_gaps)
            self._wdb.set(SchemaV1.make_chain_gaps_lookup_key(), gaps)
            self._wdb.set(SchemaV1.make_header_chain_gaps_lookup_key(), gaps)
            self._wdb.commit()
        except BaseException:
            self._wdb.discard()
            raise
        self._wchain.header = self._wchain.create_header_from_parent(target)

    def _require_writer(self) -> None:
        if not self.writer:
            raise ChainError("this chain view is read-only; blocks are written by the executor")

    def _tx_hashes(self, header: BlockHeaderAPI) -> list[Hash32]:
        raw = self.store.get(_BODY_PREFIX + bytes(header.hash))
        return [Hash32(keccak(item)) for item in rlp.decode(raw)] if raw else []

    # ---------------------------------------------------------------- execution without a block

    def _message(
        self, vm: VirtualMachineAPI, state: StateAPI, req: CallRequest, gas: int
    ) -> SignedTransactionAPI:
        """An unsigned message from `req.sender`, with the nonce the sender has in `state`."""
        from eth.vm.spoof import SpoofTransaction

        unsigned = vm.create_unsigned_transaction(
            nonce=state.get_nonce(Address(req.sender)),
            gas_price=req.gas_price,
            gas=gas,
            to=Address(req.to) if req.to is not None else constants.CREATE_CONTRACT_ADDRESS,
            value=req.value,
            data=req.data,
        )
        return cast(SignedTransactionAPI, SpoofTransaction(unsigned, from_=Address(req.sender)))

    def execute_call(self, req: CallRequest, header: BlockHeaderAPI) -> ComputationAPI:
        """Run a message on top of the state after `header`, discarding every change."""
        gas = req.gas if req.gas is not None else header.gas_limit
        vm = self.chain.get_vm(header)
        with vm.in_costless_state() as state:
            return state.costless_execute_transaction(self._message(vm, state, req, gas))

    def intrinsic_gas(self, req: CallRequest, header: BlockHeaderAPI) -> int:
        """Gas a message costs before any code runs."""
        vm = self.chain.get_vm(header)
        return int(self._message(vm, vm.state, req, int(header.gas_limit)).intrinsic_gas)

    def estimate_gas(self, req: CallRequest, header: BlockHeaderAPI) -> int:
        """Smallest gas limit with which the message succeeds (binary search, as geth)."""
        cap = req.gas if req.gas is not None else int(header.gas_limit)
        first = self.execute_call(replace(req, gas=cap), header)
        if first.is_error:
            if isinstance(first.error, Revert):
                raise Reverted(bytes(first.output))
            raise ExecutionError(f"gas required exceeds allowance ({cap})")
        intrinsic = self.intrinsic_gas(req, header)
        if first.get_gas_used() == 0 and first.get_gas_refund() == 0:
            return intrinsic

        def succeeds(gas: int) -> bool:
            if gas < intrinsic:
                return False
            return not self.execute_call(replace(req, gas=gas), header).is_error

        used = intrinsic + int(first.get_gas_used())
        low, high = used - 1, cap
        # Refunds and the 63/64 rule mean `used` may not be enough; try a close guess first.
        guess = min(cap, used * 64 // 63 + 2300)
        if succeeds(guess):
            high = guess
        while high - low > 1:
            mid = (low + high) // 2
            if succeeds(mid):
                high = mid
            else:
                low = mid
        return high

    def close(self) -> None:
        """Release the store."""
        self.db.discard()
        self._wdb.discard()
        self.store.close()


def chaindb_number_key(number: int) -> bytes:
    """py-evm's canonical number -> hash lookup key."""
    return bytes(SchemaV1.make_block_number_to_hash_lookup_key(BlockNumber(number)))


def transactions_of(block: BlockAPI) -> Sequence[SignedTransactionAPI]:
    """The transactions of a block."""
    return cast(Sequence[SignedTransactionAPI], block.transactions)
