"""Where blocks are executed and committed: in this process, or in a process of their own.

py-evm is pure Python, so one process uses one core. With `ProcessExecutor` the node process
takes transactions in (JSON-RPC, decoding, signature checks, pool) while a second process
executes and commits blocks into the same LMDB environment, whose readers see each block
once its transaction is committed. The child dies with its parent (`PR_SET_PDEATHSIG`), and
a block it was committing is either whole on disk or absent, as in one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from eth_typing import Address

from powerverse.chain.blockchain import Blockchain, BuiltBlock
from powerverse.chain.exceptions import ChainError
from powerverse.chain.genesis import Genesis, parse_genesis
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


class BlockExecutor(Protocol):
    """Builds and commits blocks on top of the stored head."""

    def build(
        self, candidates: Sequence[PooledTx], *, timestamp: int, coinbase: bytes
    ) -> BuildResult:
        """Execute as many candidates as fit into one block and commit it."""
        ...

    def rewind(self, number: int) -> None:
        """Make block `number` the head again (dev snapshots)."""
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

    def rewind(self, number: int) -> None:
        """Rewind in this process."""
        self.chain.rewind_to(number)

    def close(self) -> None:
        """Nothing to release."""


class ProcessExecutor:
    """Executes in a child process over the same data directory."""

    def __init__(self, data_dir: Path, genesis: Genesis, *, start_timeout: float = 60.0) -> None:
        self._data_dir = Path(data_dir)
        self._genesis = genesis
        self._start_timeout = start_timeout
        self.restarts = 0
        self._start()

    def _start(self) -> None:
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
        return result

    def rewind(self, number: int) -> None:
        """Rewind in the child."""
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
            if kind == "build":
                _, candidates, timestamp, coinbase = message
                built = chain.build_block(candidates, timestamp=timestamp, coinbase=coinbase)
                conn.send(("ok", BuildResult.of(built)))
            elif kind == "rewind":
                chain.rewind_to(message[1])
                conn.send(("ok", None))
            elif kind == "stop":
                conn.send(("ok", None))
                return
            else:
                conn.send(("error", f"unknown request {kind!r}"))
        except Exception as exc:
            log.exception("block executor failed")
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
