"""Where blocks are executed and committed: in this process, or in a process of their own.

py-evm is pure Python, so one process uses one core. With `ProcessExecutor` the node process
takes transactions in (JSON-RPC, decoding, signature checks, pool) while a second process
executes and commits blocks into the same LMDB environment, whose readers see each block
once its transaction is committed. The child dies with its parent (`PR_SET_PDEATHSIG`), and
a block it was committing is either whole on disk or absent, as in one process.

For consensus, blocks are made pending first (`propose`, `execute`) and one of them is
committed later with its seal (`commit_pending`). The child holds the pending blocks'
write buffers; if it dies, the parent executes the block again in the new child before
committing it, from the header and transactions it kept. Chain errors (InvalidBlock,
UnknownPendingBlock, ...) cross the process boundary as the same type, with their message.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final, NoReturn, Protocol

from eth.abc import BlockHeaderAPI
from eth_typing import Address

from powerverse.chain import exceptions as _errors
from powerverse.chain.blockchain import Blockchain, BuiltBlock
from powerverse.chain.blockcodec import decode_header, encode_block, encode_header
from powerverse.chain.exceptions import ChainError
from powerverse.chain.genesis import Genesis, parse_genesis
from powerverse.chain.rewards import RewardClaim
from powerverse.chain.store import LmdbStore
from powerverse.chain.txdecode import decode_raw_transaction
from powerverse.chain.txpool import PooledTx

log = logging.getLogger(__name__)


class ExecutorError(ChainError):
    """The block executor failed or died."""


@dataclass(frozen=True)
class BuildResult:
    """What the executor committed: the new head and the transactions it left out."""

    block_hash: bytes
    number: int
    tx_count: int
    rejected: tuple[tuple[bytes, str], ...]

    @classmethod
    def of(cls, built: BuiltBlock) -> BuildResult:
        """Summarize a built block."""
        return cls(
            bytes(built.block.hash),
            int(built.block.number),
            len(built.block.transactions),
            built.rejected,
        )


ZERO_HASH: Final = b"\x00" * 32


@dataclass(frozen=True)
class PendingResult:
    """A block executed but not committed: what consensus votes on and sends to peers."""

    block_hash: bytes
    number: int
    parent_hash: bytes
    header: bytes  # RLP of the header (decode_header gives it back)
    tx_payloads: tuple[bytes, ...]
    rejected: tuple[tuple[bytes, str], ...]  # candidates a proposal left out, and why
    attachment: bytes = b""  # the parent's certificate the block carries (chain/rewards.py)

    @classmethod
    def of(cls, built: BuiltBlock) -> PendingResult:
        """Summarize a pending block."""
        header = built.block.header
        return cls(
            bytes(header.hash),
            int(header.block_number),
            bytes(header.parent_hash),
            encode_header(header),
            built.tx_payloads,
            built.rejected,
            built.attachment,
        )

    def decoded_header(self) -> BlockHeaderAPI:
        """The header as a py-evm object."""
        return decode_header(self.header)

    def encoded(self) -> bytes:
        """The block as it goes to peers (see blockcodec.encode_block)."""
        return encode_block(self.decoded_header(), self.tx_payloads, self.attachment)


class BlockExecutor(Protocol):
    """Builds, executes and commits blocks on top of the stored head."""

    def build(
        self, candidates: Sequence[PooledTx], *, timestamp: int, coinbase: bytes
    ) -> BuildResult:
        """Execute as many candidates as fit into one block and commit it (dev mode)."""
        ...

    def propose(
        self,
        candidates: Sequence[PooledTx],
        *,
        timestamp: int,
        coinbase: bytes,
        mix_hash: bytes = ZERO_HASH,
        extra_data: bytes = b"",
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> PendingResult:
        """Execute as many candidates as fit into a block on the head; keep it pending.

        The block first pays ``reward``; ``attachment`` (the certificate the claim comes
        from) goes with it, committed to by its header (chain/rewards.py).
        """
        ...

    def execute(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        *,
        known_senders: Mapping[bytes, bytes] | None = None,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> PendingResult:
        """Check and execute another node's block on the head; keep it pending.

        Raises InvalidBlock (or BlockNotOnHead) with the rule the block breaks.
        """
        ...

    def commit_pending(self, block_hash: bytes, seal: bytes) -> BuildResult:
        """Commit a pending block with its seal, atomically; drop the other pending ones."""
        ...

    def discard_pending(self) -> None:
        """Drop every pending block."""
        ...

    def import_block(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        seal: bytes,
        *,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> BuildResult:
        """Execute a block finalized elsewhere and commit it with its seal (syncing)."""
        ...

    def rewind(self, number: int) -> None:
        """Make block `number` the head again (dev snapshots); drops pending blocks."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


class LocalExecutor:
    """Executes in this process, on a writer `Blockchain`."""

    def __init__(self, chain: Blockchain) -> None:
        self.chain = chain

    def build(
        self, candidates: Sequence[PooledTx], *, timestamp: int, coinbase: bytes
    ) -> BuildResult:
        """Build in this process."""
        return BuildResult.of(
            self.chain.build_block(candidates, timestamp=timestamp, coinbase=coinbase)
        )

    def propose(
        self,
        candidates: Sequence[PooledTx],
        *,
        timestamp: int,
        coinbase: bytes,
        mix_hash: bytes = ZERO_HASH,
        extra_data: bytes = b"",
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> PendingResult:
        """Propose in this process."""
        built = self.chain.propose_block(
            candidates,
            timestamp=timestamp,
            coinbase=coinbase,
            mix_hash=mix_hash,
            extra_data=extra_data,
            reward=reward,
            attachment=attachment,
        )
        return PendingResult.of(built)

    def execute(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        *,
        known_senders: Mapping[bytes, bytes] | None = None,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> PendingResult:
        """Execute in this process."""
        built = self.chain.execute_block(
            header, tx_payloads, known_senders=known_senders, reward=reward, attachment=attachment
        )
        return PendingResult.of(built)

    def commit_pending(self, block_hash: bytes, seal: bytes) -> BuildResult:
        """Commit in this process."""
        return BuildResult.of(self.chain.commit_pending(block_hash, seal))

    def discard_pending(self) -> None:
        """Discard in this process."""
        self.chain.discard_pending()

    def import_block(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        seal: bytes,
        *,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> BuildResult:
        """Import in this process."""
        built = self.chain.import_block(
            header, tx_payloads, seal, reward=reward, attachment=attachment
        )
        return BuildResult.of(built)

    def rewind(self, number: int) -> None:
        """Rewind in this process."""
        self.chain.rewind_to(number)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class _Kept:
    """A pending block as the parent remembers it, to execute again in a new child."""

    generation: int
    header: bytes
    tx_payloads: tuple[bytes, ...]
    reward: RewardClaim | None
    attachment: bytes


class ProcessExecutor:
    """Executes in a child process over the same data directory."""

    def __init__(self, data_dir: Path, genesis: Genesis, *, start_timeout: float = 60.0) -> None:
        self._data_dir = Path(data_dir)
        self._genesis = genesis
        self._start_timeout = start_timeout
        self.restarts = 0
        self._generation = 0  # which child this is: pending blocks live in one child
        self._kept: dict[bytes, _Kept] = {}
        self._start()

    def _start(self) -> None:
        self._generation += 1
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child_main,
            args=(child_conn, str(self._data_dir), self._genesis.to_json()),
            name="pv-executor",
            daemon=True,
        )
        self._proc.start()
        child_conn.close()
        if not self._conn.poll(self._start_timeout):
            self.close()
            raise ExecutorError(f"the block executor did not start within {self._start_timeout} s")
        self._reply()

    def _ensure_running(self) -> None:
        """Start a new executor if the last one died (a block it was writing is whole or absent)."""
        if self._proc.is_alive():
            return
        log.warning(
            "the block executor process exited (code %s); starting a new one", self._proc.exitcode
        )
        self._conn.close()
        self.restarts += 1
        self._start()

    def _reply(self) -> Any:
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise ExecutorError(
                f"the block executor process died (exit code {self._proc.exitcode})"
            ) from exc
        if kind == "error":
            raise ExecutorError(str(value))
        if kind == "raise":
            _raise_crossed(*value)
        return value

    def _call(self, *message: Any) -> Any:
        self._ensure_running()
        try:
            self._conn.send(message)
        except (BrokenPipeError, OSError) as exc:
            raise ExecutorError("the block executor process is gone") from exc
        return self._reply()

    def build(
        self, candidates: Sequence[PooledTx], *, timestamp: int, coinbase: bytes
    ) -> BuildResult:
        """Send the candidates to the child; wait for the block.

        They travel pickled, decoded transactions with the sender and hash py-evm cached on
        them: about 7 µs each, where decoding the raw bytes again would take about 55 µs.
        """
        result: BuildResult = self._call("build", list(candidates), timestamp, coinbase)
        self._kept.clear()  # committing dropped the pending blocks
        return result

    def propose(
        self,
        candidates: Sequence[PooledTx],
        *,
        timestamp: int,
        coinbase: bytes,
        mix_hash: bytes = ZERO_HASH,
        extra_data: bytes = b"",
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> PendingResult:
        """Propose in the child (candidates travel as for `build`); it keeps the block."""
        result: PendingResult = self._call(
            "propose",
            list(candidates),
            timestamp,
            coinbase,
            mix_hash,
            extra_data,
            reward,
            attachment,
        )
        self._keep(result, reward)
        return result

    def execute(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        *,
        known_senders: Mapping[bytes, bytes] | None = None,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> PendingResult:
        """Execute in the child; it keeps the block."""
        payloads = tuple(tx_payloads)
        hints = dict(known_senders) if known_senders else None
        result: PendingResult = self._call(
            "execute", encode_header(header), payloads, hints, reward, attachment
        )
        # the child does not send the transactions back
        result = replace(result, tx_payloads=payloads, attachment=attachment)
        self._keep(result, reward)
        return result

    def commit_pending(self, block_hash: bytes, seal: bytes) -> BuildResult:
        """Commit in the child; a block the child lost by dying is executed again first."""
        block_hash = bytes(block_hash)
        self._ensure_running()
        kept = self._kept.get(block_hash)
        if kept is not None and kept.generation != self._generation:
            log.warning("executing pending block 0x%s again in the new executor", block_hash.hex())
            try:
                self._call(
                    "execute", kept.header, kept.tx_payloads, None, kept.reward, kept.attachment
                )
            except ChainError:
                # E.g. BlockNotOnHead: the old child died committing it, after the write.
                self._kept.pop(block_hash, None)
                raise
            self._kept[block_hash] = replace(kept, generation=self._generation)
        try:
            result: BuildResult = self._call("commit", block_hash, seal)
        except _errors.PendingBlockError:
            self._kept.pop(block_hash, None)
            raise
        self._kept.clear()
        return result

    def discard_pending(self) -> None:
        """Discard in the child (a dead child held nothing that survives it)."""
        self._kept.clear()
        if self._proc.is_alive():
            self._call("discard")

    def import_block(
        self,
        header: BlockHeaderAPI,
        tx_payloads: Sequence[bytes],
        seal: bytes,
        *,
        reward: RewardClaim | None = None,
        attachment: bytes = b"",
    ) -> BuildResult:
        """Execute and commit in the child, in one round trip."""
        result: BuildResult = self._call(
            "import", encode_header(header), tuple(tx_payloads), seal, reward, attachment
        )
        self._kept.clear()
        return result

    def _keep(self, result: PendingResult, reward: RewardClaim | None) -> None:
        self._kept[result.block_hash] = _Kept(
            self._generation, result.header, result.tx_payloads, reward, result.attachment
        )

    def rewind(self, number: int) -> None:
        """Rewind in the child."""
        self._kept.clear()
        self._call("rewind", number)

    def close(self) -> None:
        """Stop the child (it finishes a block it is committing first)."""
        if self._proc.is_alive():
            with contextlib.suppress(ExecutorError):
                self._call("stop")
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        self._conn.close()


# Chain errors that cross from the child as themselves (each takes just a message).
_CROSSING: Final[dict[str, type[ChainError]]] = {
    cls.__name__: cls
    for cls in (
        _errors.ChainError,
        _errors.StoreError,
        _errors.GenesisError,
        _errors.BlockNotFound,
        _errors.TransactionNotFound,
        _errors.ExecutionError,
        _errors.DevModeOnly,
        _errors.InvalidBlock,
        _errors.BlockNotOnHead,
        _errors.PendingBlockError,
        _errors.UnknownPendingBlock,
        _errors.StalePendingBlock,
    )
}


def _raise_crossed(name: str, message: str) -> NoReturn:
    """Raise in the parent the chain error the child raised."""
    cls = _CROSSING.get(name)
    if cls is None:
        raise ExecutorError(f"{name}: {message}")
    raise cls(message)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kill -9 included)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def pooled_from_raw(raw: bytes, sender: bytes) -> PooledTx:
    """Decode a transaction whose sender the pool already recovered, without recovering again."""
    tx = decode_raw_transaction(raw)
    # py-evm caches the recovered sender in the instance (a cached_property named "sender").
    tx.__dict__["sender"] = Address(sender)
    return PooledTx(
        tx=tx,
        hash=bytes(tx.hash),
        sender=sender,
        nonce=int(tx.nonce),
        raw=raw,
        size=len(raw),
        received=0,
    )


def _child_main(conn: Connection, data_dir: str, genesis_doc: dict[str, Any]) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        store = LmdbStore(Path(data_dir), lock=False)
        chain = Blockchain(store, parse_genesis(genesis_doc), writer=True)
    except Exception as exc:
        conn.send(("error", f"cannot open the chain: {exc}"))
        return
    conn.send(("ok", None))
    try:
        _serve(conn, chain)
    finally:
        chain.close()


def _serve(conn: Connection, chain: Blockchain) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        try:
            if kind == "stop":
                conn.send(("ok", None))
                return
            conn.send(("ok", _handle(chain, kind, message[1:])))
        except Exception as exc:
            if type(exc).__name__ in _CROSSING and type(exc).__module__ == _errors.__name__:
                conn.send(("raise", (type(exc).__name__, str(exc))))
                continue
            log.exception("block executor failed")
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _handle(chain: Blockchain, kind: str, args: tuple[Any, ...]) -> Any:
    """Answer one request from the parent."""
    if kind == "build":
        candidates, timestamp, coinbase = args
        built = chain.build_block(candidates, timestamp=timestamp, coinbase=coinbase)
        return BuildResult.of(built)
    if kind == "propose":
        candidates, timestamp, coinbase, mix_hash, extra_data, reward, attachment = args
        built = chain.propose_block(
            candidates,
            timestamp=timestamp,
            coinbase=coinbase,
            mix_hash=mix_hash,
            extra_data=extra_data,
            reward=reward,
            attachment=attachment,
        )
        return PendingResult.of(built)
    if kind == "execute":
        header, payloads, hints, reward, attachment = args
        built = chain.execute_block(
            decode_header(header),
            payloads,
            known_senders=hints,
            reward=reward,
            attachment=attachment,
        )
        return replace(PendingResult.of(built), tx_payloads=(), attachment=b"")
    if kind == "commit":
        block_hash, seal = args
        return BuildResult.of(chain.commit_pending(block_hash, seal))
    if kind == "discard":
        chain.discard_pending()
        return None
    if kind == "import":
        header, payloads, seal, reward, attachment = args
        built = chain.import_block(
            decode_header(header), payloads, seal, reward=reward, attachment=attachment
        )
        return BuildResult.of(built)
    if kind == "rewind":
        chain.rewind_to(args[0])
        return None
    raise ExecutorError(f"unknown request {kind!r}")
