"""The chain: py-evm (Prague rules) over the persistent store, with block building and queries.

Blocks use the Ethereum header, so `parentHash`, `timestamp` and
`transactionsRoot` are the whitepaper's PrevHash, Timestamp and TxRoot. The fee
recipient (`coinbase`) is the block's proposer. Each block is committed in one
atomic store transaction (see `store.py`), so a killed node restarts at the last
whole block.

For consensus a block is first made *pending*: proposed from the pool
(`propose_block`) or received from another node and re-executed (`execute_block`),
each in a write buffer of its own, so several proposals on the same parent can be
pending at once. `commit_pending` then writes exactly one of them, with the seal
that finalized it (`pv:seal:<hash>`), in one store transaction, and drops the rest.
Dev mode's `build_block` is propose + commit, without a seal.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import rlp
from eth import constants
from eth._utils.headers import compute_gas_limit_bounds
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
from eth.vm.forks.prague import PragueVM
from eth_hash.auto import keccak
from eth_typing import Address, BlockNumber, Hash32
from eth_utils.exceptions import ValidationError

from powerverse.chain.accountdb import CachedAccountDB
from powerverse.chain.blockcheck import (
    MAX_EXTRA_DATA,
    block_transaction,
    check_execution,
    check_transactions_root,
    expected_header,
    recover_sender,
)
from powerverse.chain.blockrun import BlockRun
from powerverse.chain.evidence import (
    EVIDENCE_PRECOMPILE,
    VOTE_PRECOMPILE,
    evidence_precompile,
    vote_precompile,
)
from powerverse.chain.exceptions import (
    BlockNotFound,
    ChainError,
    ExecutionError,
    GenesisError,
    InvalidBlock,
    Reverted,
    StalePendingBlock,
    TransactionNotFound,
    UnknownPendingBlock,
)
from powerverse.chain.genesis import Genesis
from powerverse.chain.rewards import Payee, RewardClaim, RewardPlan
from powerverse.chain.store import BufferedStore, LmdbStore
from powerverse.chain.trie_root import ordered_trie_root

if TYPE_CHECKING:
    from powerverse.chain.txpool import PooledTx

log = logging.getLogger(__name__)

_GENESIS_KEY = b"pv:genesis-hash"
_RECEIPTS_PREFIX = b"pv:receipts:"
_BLOCK_META_PREFIX = b"pv:blockmeta:"
_BODY_PREFIX = b"pv:body:"
_SEAL_PREFIX = b"pv:seal:"
_ATTACHMENT_PREFIX = b"pv:attach:"
_REWARD_PREFIX = b"pv:reward:"
_BUNDLE_CACHE = 256


class PowerVerseVM(PragueVM):
    """Prague rules; proof-of-stake, so no block reward from the EVM (rewards come later)."""


def _vm_with_evidence(genesis_hash: bytes) -> type[PowerVerseVM]:
    """PowerVerseVM plus the PowerVerse precompiles (evidence, one vote) bound to this genesis."""
    base_state = PowerVerseVM._state_class
    base_computation = base_state.computation_class
    precompiles = {
        **base_computation.get_precompiles(),
        Address(EVIDENCE_PRECOMPILE): evidence_precompile(genesis_hash),
        Address(VOTE_PRECOMPILE): vote_precompile(genesis_hash),
    }
    computation = type("PowerVerseComputation", (base_computation,), {"_precompiles": precompiles})
    state = type(
        "PowerVerseState",
        (base_state,),
        {"computation_class": computation, "account_db_class": CachedAccountDB},
    )
    return type("PowerVerseVM", (PowerVerseVM,), {"_state_class": state})


def chain_class(chain_id: int, genesis_hash: bytes | None = None) -> type[MiningChain]:
    """The py-evm chain class of a PowerVerse chain with this id.

    With `genesis_hash` its VM has every PowerVerse precompile (chain/evidence.py); without it
    only Prague's, which is enough to build block 0 and to run genesis constructors.
    """
    vm = PowerVerseVM if genesis_hash is None else _vm_with_evidence(genesis_hash)
    return MiningChain.configure(
        __name__="PowerVerseChain",
        vm_configuration=((constants.GENESIS_BLOCK_NUMBER, vm),),
        chain_id=chain_id,
    )


_chain_class = chain_class


@dataclass(frozen=True)
class BuiltBlock:
    """A block built or executed (pending or committed), with its receipts and senders."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    senders: tuple[bytes, ...]
    rejected: tuple[tuple[bytes, str], ...]  # (transaction hash, why it was left out)
    # The raw transactions as in the body (what `encode_block` sends); empty when the
    # BuiltBlock was made from a stored bundle rather than by this chain.
    tx_payloads: tuple[bytes, ...] = ()
    # What the block paid out of the emission pool (chain/rewards.py), and the bytes it
    # carries beside its transactions (its parent's finality certificate), committed to by
    # the header's parentBeaconBlockRoot.
    reward: RewardPlan | None = None
    attachment: bytes = b""


@dataclass(frozen=True)
class _Pending:
    """A block executed into a write buffer of its own, waiting to be committed or dropped."""

    built: BuiltBlock
    db: BufferedStore
    parent_hash: bytes


class _HintedFailure(Exception):
    """A block failed while trusting known senders (the cause says why); judge it again."""


def _apply_received(
    run: BlockRun, tx: SignedTransactionAPI, raw: bytes, sender: bytes, index: int
) -> None:
    """Apply a received block's transaction; any failure makes the block invalid."""
    try:
        run.apply(tx, raw, sender)
    except ValidationError as exc:
        raise InvalidBlock(
            f"transaction {index} (0x{keccak(raw).hex()}) cannot be applied: {exc}"
        ) from exc
    except ChainError:
        raise
    except Exception as exc:  # py-evm failing on odd input is the block's fault, not ours
        log.warning("transaction %d of a received block failed unexpectedly", index, exc_info=True)
        raise InvalidBlock(
            f"transaction {index} (0x{keccak(raw).hex()}) failed: {type(exc).__name__}: {exc}"
        ) from exc


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
        chain_class = self._chain_class = _chain_class(genesis.chain_id)
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
        # Every block after genesis runs with the PowerVerse precompiles, which are bound to
        # the genesis hash (signed consensus messages name it).
        chain_class = self._chain_class = _chain_class(genesis.chain_id, self.genesis_hash)
        self.chain = chain_class(self._atomic)
        # Blocks are built and committed through a second chain object with its own write
        # buffer, so readers (RPC) only ever see committed data and can run while a block is
        # being built in another thread.
        self.writer = writer
        self._wdb = BufferedStore(store)
        self._wchain = chain_class(AtomicDB(self._wdb)) if writer else self.chain
        self._bundles: OrderedDict[bytes, BlockBundle] = OrderedDict()
        # Blocks executed but not committed, by hash, each with its own write buffer.
        self._pending: dict[bytes, _Pending] = {}

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
        """Apply as many candidates as fit, then commit the block at once (dev mode: no seal).

        The block claims its own block reward for ``coinbase`` (one node makes every block).
        Committing drops every other pending block.
        """
        built = self.propose_block(
            candidates,
            timestamp=timestamp,
            coinbase=coinbase,
            mix_hash=mix_hash,
            extra_data=extra_data,
            pay_self=True,
        )
        return self._commit(bytes(built.block.hash), None)

    def propose_block(
        self,
        candidates: Iterable[PooledTx],
        *,
        timestamp: int,
        coinbase: bytes,
        mix_hash: bytes = b"\x00" * 32,
        extra_data: bytes = b"",
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
        pay_self: bool = False,
    ) -> BuiltBlock:
        """Apply as many candidates as fit into a block on the head and keep it pending.

        A candidate py-evm refuses is reported in `rejected` and its sender's later
        candidates are skipped; so is a sender whose next candidate no longer fits. A
        `timestamp` not after the head's becomes the head's + 1. The block pays `reward`
        (chain/rewards.py) first; `attachment` (the certificate the claim comes from) goes
        with the block, committed to by its header. `pay_self`: the block claims the emission
        up to its own timestamp for `coinbase` (one node making every block).
        """
        self._require_writer()
        if len(extra_data) > MAX_EXTRA_DATA:
            raise ChainError(f"extra data is {len(extra_data)} bytes; at most {MAX_EXTRA_DATA}")
        db, chain = self._writer_chain()
        try:
            parent = chain.get_canonical_head()
            if timestamp <= parent.timestamp:
                timestamp = parent.timestamp + 1
            header = chain.create_header_from_parent(
                parent,
                timestamp=timestamp,
                coinbase=Address(coinbase),
                mix_hash=Hash32(mix_hash),
                extra_data=extra_data,
                gas_limit=target_gas_limit(int(parent.gas_limit), self.genesis.gas_limit),
                **attachment_commitment(attachment),
            )
            if pay_self:
                reward = RewardClaim(until=int(timestamp), proposer=Payee(b"", bytes(coinbase)))
            run = self._run(chain, header, reward)
            rejected: list[tuple[bytes, str]] = []
            skipped: set[bytes] = set()
            for ptx in candidates:
                if ptx.sender in skipped:
                    continue
                if run.gas_used + ptx.tx.gas > run.gas_limit:
                    skipped.add(ptx.sender)
                    if run.gas_limit - run.gas_used < 21_000:
                        break
                    continue
                try:
                    # Strict RLP decoding: ptx.raw is the canonical encoding of ptx.tx.
                    run.apply(ptx.tx, ptx.raw, ptx.sender)
                except ValidationError as exc:
                    rejected.append((ptx.hash, str(exc)))
                    skipped.add(ptx.sender)
            built = self._persist(chain, db, run, run.finish(), tuple(rejected), attachment)
        except BaseException:
            db.discard()
            raise
        return self._keep(built, db, bytes(parent.hash))

    def execute_block(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        *,
        known_senders: Mapping[bytes, bytes] | None = None,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> BuiltBlock:
        """Check and execute a block another node proposed on the head; keep it pending.

        `reward` is the claim the node derived from `attachment` (the block's parent
        certificate, which the header must commit to).

        Raises InvalidBlock (BlockNotOnHead when it does not extend the head) with the rule
        it breaks; then nothing is kept and the head is unchanged. Every transaction must
        apply: none is skipped. `known_senders` maps transaction hashes to senders this node
        already recovered (its pool), to save recovering them again; the hash commits to the
        signature, so a correct hint cannot mislead. If the block fails while hints were
        used, it is judged again recovering every sender, so a wrong hint can cost time but
        never make a valid block look invalid. A block already pending is returned as it is
        (its transactions checked against the header's root if they differ from the kept ones).
        """
        self._require_writer()
        payloads = tuple(tx_payloads)
        found = self._pending.get(bytes(header.hash))
        if found is not None:
            if payloads != found.built.tx_payloads:  # the header commits to other transactions
                check_transactions_root(header, ordered_trie_root(payloads))
            return found.built
        for index, raw in enumerate(payloads):
            if not isinstance(raw, bytes):
                raise InvalidBlock(f"transaction {index} is {type(raw).__name__}, not bytes")
        try:
            built, db = self._execute(header, payloads, known_senders or {}, reward, attachment)
        except _HintedFailure as failure:
            log.warning(
                "block 0x%s failed with the known senders (%s); checking it again",
                bytes(header.hash).hex(),
                failure.__cause__,
            )
            built, db = self._execute(header, payloads, {}, reward, attachment)
        return self._keep(built, db, bytes(header.parent_hash))

    def import_block(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        seal: bytes,
        *,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> BuiltBlock:
        """Execute a block finalized elsewhere and commit it with its seal (syncing)."""
        built = self.execute_block(header, tx_payloads, reward=reward, attachment=attachment)
        return self.commit_pending(bytes(built.block.hash), seal)

    def commit_pending(self, block_hash: bytes, seal: bytes) -> BuiltBlock:
        """Make a pending block the head, with its seal, in one store transaction.

        Every other pending block is dropped. Raises UnknownPendingBlock for a hash that is
        not pending and StalePendingBlock (dropping it) when its parent is no longer the head.
        If the store write itself fails, nothing is committed and every pending block is
        dropped too.
        """
        if not isinstance(seal, bytes | bytearray):
            raise TypeError(f"a seal is bytes, not {type(seal).__name__}")
        return self._commit(bytes(block_hash), bytes(seal))

    def discard_pending(self) -> None:
        """Drop every pending block."""
        for pending in self._pending.values():
            pending.db.discard()
        self._pending.clear()

    def pending_hashes(self) -> tuple[bytes, ...]:
        """Hashes of the pending blocks, oldest first."""
        return tuple(self._pending)

    def pending_block(self, block_hash: bytes) -> BuiltBlock:
        """A pending block by hash; UnknownPendingBlock if there is none."""
        pending = self._pending.get(bytes(block_hash))
        if pending is None:
            raise UnknownPendingBlock(f"no pending block 0x{bytes(block_hash).hex()}")
        return pending.built

    def seal_of(self, block_hash: bytes) -> bytes | None:
        """The seal committed with a block; None for a block committed without one (dev mode)."""
        return self.store.get(_SEAL_PREFIX + bytes(block_hash))

    def attachment_of(self, block_hash: bytes) -> bytes:
        """What a block carries beside its transactions (its parent's certificate), or b""."""
        return self.store.get(_ATTACHMENT_PREFIX + bytes(block_hash)) or b""

    def reward_of(self, block_hash: bytes) -> RewardPlan | None:
        """What a committed block paid out of the emission pool; None when it paid nothing."""
        raw = self.store.get(_REWARD_PREFIX + bytes(block_hash))
        return RewardPlan.from_rlp(rlp.decode(raw)) if raw else None

    def raw_block(self, number: int) -> tuple[BlockHeaderAPI, tuple[bytes, ...]]:
        """A canonical block as (header, raw transactions), as `encode_block` takes them."""
        header = self.header_by_number(number)
        raw = self.store.get(_BODY_PREFIX + bytes(header.hash))
        return header, tuple(rlp.decode(raw)) if raw else ()

    def _execute(
        self,
        header: BlockHeaderAPI,
        payloads: tuple[bytes, ...],
        hints: Mapping[bytes, bytes],
        reward: RewardClaim | None,
        attachment: bytes,
    ) -> tuple[BuiltBlock, BufferedStore]:
        db, chain = self._writer_chain()
        hinted = False
        try:
            parent = chain.get_canonical_head()
            expected = expected_header(
                chain, parent, header, commitment=attachment_commitment(attachment)
            )
            root = ordered_trie_root(payloads)
            check_transactions_root(header, root)  # before spending time on execution
            run = self._run(chain, expected, reward)
            try:
                for index, raw in enumerate(payloads):
                    tx = block_transaction(raw, index, self.chain_id)
                    hint = hints.get(keccak(raw)) if hints else None
                    if hint is None:
                        sender = recover_sender(tx, index)
                    else:
                        # py-evm caches the sender in the instance (a cached_property).
                        tx.__dict__["sender"] = Address(hint)
                        sender, hinted = bytes(hint), True
                    _apply_received(run, tx, raw, sender, index)
                mined = run.finish(transaction_root=root)
                check_execution(header, mined.header)
            except InvalidBlock as exc:
                if hinted:
                    raise _HintedFailure() from exc
                raise
            built = self._persist(chain, db, run, mined, (), attachment)
        except BaseException:
            db.discard()
            raise
        return built, db

    def _run(
        self, chain: MiningChain, header: BlockHeaderAPI, reward: RewardClaim | None
    ) -> BlockRun:
        tokenomics = self.genesis.tokenomics
        return BlockRun(
            chain,
            header,
            fast_transfers=self.fast_transfers,
            reward=reward,
            listing_time=tokenomics.listing_time if tokenomics is not None else None,
        )

    def _writer_chain(self) -> tuple[BufferedStore, MiningChain]:
        """A write buffer of its own and a chain over it, for one pending block."""
        db = BufferedStore(self.store)
        return db, self._chain_class(AtomicDB(db))

    def _persist(
        self,
        chain: MiningChain,
        db: BufferedStore,
        run: BlockRun,
        mined: BlockAPI,
        rejected: tuple[tuple[bytes, str], ...],
        attachment: bytes,
    ) -> BuiltBlock:
        """Write the block, body, receipts and senders into the run's buffer (not committed)."""
        chain.chaindb.persist_block(mined)
        block_hash = bytes(mined.hash)
        db.set(_BODY_PREFIX + block_hash, rlp.encode(run.payloads))
        db.set(_RECEIPTS_PREFIX + block_hash, rlp.encode(run.receipt_payloads))
        db.set(_BLOCK_META_PREFIX + block_hash, rlp.encode(run.senders))
        if attachment:
            db.set(_ATTACHMENT_PREFIX + block_hash, attachment)
        if run.reward is not None:
            db.set(_REWARD_PREFIX + block_hash, rlp.encode(run.reward.to_rlp()))
        return BuiltBlock(
            mined,
            tuple(run.receipts),
            tuple(run.senders),
            rejected,
            tuple(run.payloads),
            run.reward,
            attachment,
        )

    def _keep(self, built: BuiltBlock, db: BufferedStore, parent_hash: bytes) -> BuiltBlock:
        block_hash = bytes(built.block.hash)
        found = self._pending.get(block_hash)
        if found is not None:  # the same block again: keep the first
            db.discard()
            return found.built
        self._pending[block_hash] = _Pending(built, db, parent_hash)
        return built

    def _commit(self, block_hash: bytes, seal: bytes | None) -> BuiltBlock:
        self._require_writer()
        pending = self._pending.get(block_hash)
        if pending is None:
            raise UnknownPendingBlock(f"no pending block 0x{block_hash.hex()}")
        head = self._wchain.get_canonical_head()
        if bytes(head.hash) != pending.parent_hash:
            del self._pending[block_hash]
            pending.db.discard()
            raise StalePendingBlock(
                f"pending block 0x{block_hash.hex()} has parent 0x{pending.parent_hash.hex()}, "
                f"but the head is now 0x{bytes(head.hash).hex()}"
            )
        if seal is not None:
            pending.db.set(_SEAL_PREFIX + block_hash, seal)
        try:
            pending.db.commit()  # one LMDB transaction: the whole block, its seal, the new head
        finally:
            self.discard_pending()
        self._wchain.header = self._wchain.create_header_from_parent(pending.built.block.header)
        return pending.built

    def rewind_to(self, number: int) -> None:
        """Make block `number` the head again (dev-mode snapshots only)."""
        self._require_writer()
        target = self.header_by_number(number)
        self.discard_pending()
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
        self.discard_pending()
        self.db.discard()
        self._wdb.discard()
        self.store.close()


def attachment_commitment(attachment: bytes) -> dict[str, Any]:
    """Header fields committing to a block's attachment: parentBeaconBlockRoot = its keccak
    (py-evm's default when there is none)."""
    return {"parent_beacon_block_root": Hash32(keccak(attachment))} if attachment else {}


def target_gas_limit(parent_gas_limit: int, target: int) -> int:
    """The gas limit a proposer sets: `target` (the genesis gas limit), or as near as allowed.

    py-evm's default moves the limit toward 1.5 x the gas used, so an idle chain would
    shrink it by 1/1024 per block down to 5,000 gas; ours stays where the genesis puts it.
    """
    low, high = compute_gas_limit_bounds(parent_gas_limit)
    return min(max(target, low), high)


def chaindb_number_key(number: int) -> bytes:
    """py-evm's canonical number -> hash lookup key."""
    return bytes(SchemaV1.make_block_number_to_hash_lookup_key(BlockNumber(number)))


def transactions_of(block: BlockAPI) -> Sequence[SignedTransactionAPI]:
    """The transactions of a block."""
    return cast(Sequence[SignedTransactionAPI], block.transactions)
