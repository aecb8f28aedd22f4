"""One authenticated, encrypted session with a peer: framing, counters, requests, shutdown.

The connection reads frames, decrypts and parses them, applies the per-peer rate limit and
hands messages to the host (`SessionEvents`). It answers pings, correlates responses with
the requests it sent, and runs gossip jobs one at a time in arrival order (so a slow
validator delays only this peer, never the reading of responses).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from powerverse.p2p.address import PeerAddress, short_id
from powerverse.p2p.config import AEAD_OVERHEAD, FRAME_HEADER_LEN, P2PConfig
from powerverse.p2p.exceptions import (
    ConnectionClosed,
    PayloadTooLarge,
    PeerDisconnected,
    ProtocolViolation,
    RemoteError,
    RequestBusy,
    RequestTimeout,
    UnknownRequestKind,
)
from powerverse.p2p.frames import read_frame
from powerverse.p2p.handshake import HandshakeResult
from powerverse.p2p.messages import (
    Goodbye,
    Message,
    Ping,
    Pong,
    Request,
    Response,
    Status,
    decode_message,
    encode_message,
)
from powerverse.p2p.ratelimit import FrameLimiter

__all__ = ["Connection", "Direction", "SessionEvents"]

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Dropped = Callable[[], None]


class Direction(enum.Enum):
    """Who dialed: OUTBOUND when this node did."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SessionEvents(Protocol):
    """What a connection reports to its host."""

    def on_message(self, conn: Connection, message: Message) -> None:
        """A message other than ping, pong, goodbye or response arrived."""

    def on_violation(self, conn: Connection, reason: str) -> None:
        """The peer broke the protocol (oversized, undecryptable or unparsable frame)."""

    def on_rate_limited(self, conn: Connection) -> None:
        """A frame was dropped for exceeding the peer's rate limit."""

    def on_closed(self, conn: Connection) -> None:
        """The connection closed (called once)."""


class Connection:
    """A live session with one peer, after a successful handshake."""

    def __init__(
        self,
        *,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: HandshakeResult,
        direction: Direction,
        remote: tuple[str, int],
        listen_address: PeerAddress | None,
        config: P2PConfig,
        clock: Callable[[], float],
        events: SessionEvents,
    ) -> None:
        self.peer_id = session.peer_id
        self.direction = direction
        self.remote = remote
        self.listen_address = listen_address
        self.connected_since = clock()
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages_in = 0
        self.messages_out = 0
        self.dropped = 0
        self.inbound_requests = 0
        self.pex_pending = False
        self.close_reason: str | None = None
        self._reader = reader
        self._writer = writer
        self._cipher = session.cipher
        self._config = config
        self._events = events
        self._loop = asyncio.get_running_loop()
        self.last_received = self._loop.time()
        self.last_ping = self._loop.time()
        self._limiter = FrameLimiter(
            messages_per_s=config.rate_messages_per_s,
            messages_burst=config.rate_messages_burst,
            bytes_per_s=config.rate_bytes_per_s,
            bytes_burst=config.rate_bytes_burst,
            clock=clock,
        )
        self._request_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._request_slots = asyncio.Semaphore(config.max_outbound_requests)
        self._jobs: asyncio.Queue[tuple[Job, Dropped]] = asyncio.Queue(config.gossip_queue_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._read_task: asyncio.Task[object] | None = None
        self._closing = False
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Connection {short_id(self.peer_id)} {self.direction.value} {self.remote}>"

    @property
    def closing(self) -> bool:
        """Whether close() has been called."""
        return self._closing

    # Sending

    def send(self, message: Message) -> bool:
        """Encrypt and queue message; False if the connection is closing."""
        if self._closing:
            return False
        plaintext = encode_message(message)
        if len(plaintext) + AEAD_OVERHEAD > self._config.max_frame_size:
            raise PayloadTooLarge(f"message of {len(plaintext)} bytes exceeds the frame limit")
        frame = self._cipher.seal(plaintext)
        self._writer.write(frame)
        self.bytes_out += len(frame)
        self.messages_out += 1
        if self._writer.transport.get_write_buffer_size() > self._config.max_send_buffer:
            self.close("send buffer overflow (peer reads too slowly)")
        return True

    async def request(self, kind: int, payload: bytes, timeout: float) -> bytes:
        """Send a request and wait for its response payload (see Host.request for errors)."""
        try:
            async with asyncio.timeout(timeout):
                async with self._request_slots:
                    response = await self._exchange(kind, payload)
        except TimeoutError as err:
            raise RequestTimeout(
                f"no response from {short_id(self.peer_id)} to request kind {kind} in {timeout} s"
            ) from err
        if response.status is Status.OK:
            return response.payload
        if response.status is Status.UNKNOWN_KIND:
            raise UnknownRequestKind(
                f"peer {short_id(self.peer_id)} has no handler for request kind {kind}"
            )
        if response.status is Status.BUSY:
            raise RequestBusy(f"peer {short_id(self.peer_id)} has too many requests in flight")
        message = response.payload.decode("utf-8", errors="replace")
        raise RemoteError(f"peer {short_id(self.peer_id)} failed request kind {kind}: {message}")

    async def _exchange(self, kind: int, payload: bytes) -> Response:
        if self._closing:
            raise PeerDisconnected(self._gone())
        request_id = next(self._request_ids)
        future: asyncio.Future[Response] = self._loop.create_future()
        self._pending[request_id] = future
        try:
            self.send(Request(request_id, kind, payload))
            return await future
        finally:
            self._pending.pop(request_id, None)

    def _gone(self) -> str:
        return f"peer {short_id(self.peer_id)} disconnected: {self.close_reason}"

    # Work on behalf of the host

    def enqueue(self, job: Job, dropped: Dropped) -> bool:
        """Queue job for this peer's worker (in order); False if the queue is full.

        If the connection closes before the job has run to the end, dropped() is called.
        """
        if self._closing:
            return False
        try:
            self._jobs.put_nowait((job, dropped))
        except asyncio.QueueFull:
            return False
        return True

    def spawn(self, job: Job) -> None:
        """Run job concurrently, as part of this connection (cancelled when it closes)."""
        if not self._closing:
            self._track(asyncio.create_task(self._guarded(job)))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, job: Job) -> None:
        try:
            await job()
        except Exception:
            log.exception("job for peer %s failed", short_id(self.peer_id))

    async def _work(self) -> None:
        while not self._closing:
            job, dropped = await self._jobs.get()
            try:
                await self._guarded(job)
            except asyncio.CancelledError:
                dropped()
                raise

    def _drop_queued(self) -> None:
        while not self._jobs.empty():
            _, dropped = self._jobs.get_nowait()
            dropped()

    # Reading

    async def run(self) -> None:
        """Read and dispatch frames until the session ends; return after full cleanup."""
        self._read_task = asyncio.current_task()
        reason = "connection closed by peer"
        try:
            if not self._closing:
                self._track(asyncio.create_task(self._work()))
            while not self._closing:
                try:
                    header, body = await read_frame(self._reader, self._config.max_frame_size)
                    self._receive(header, body)
                except ConnectionClosed:
                    break
                except ProtocolViolation as err:
                    reason = f"protocol violation: {err}"
                    self._events.on_violation(self, str(err))
                    break
                except Exception:
                    log.exception("handling a frame from %s failed", short_id(self.peer_id))
                    reason = "internal error"
                    break
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        finally:
            self.close(reason)
            await self._cleanup()

    def _receive(self, header: bytes, body: bytes) -> None:
        size = FRAME_HEADER_LEN + len(body)
        self.bytes_in += size
        self.last_received = self._loop.time()
        message = decode_message(self._cipher.open(header, body))
        self.messages_in += 1
        if not self._limiter.allow(size):
            self.dropped += 1
            self._events.on_rate_limited(self)
            return
        if isinstance(message, Ping):
            self.send(Pong(message.nonce))
        elif isinstance(message, Pong):
            pass
        elif isinstance(message, Response):
            future = self._pending.get(message.request_id)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, Goodbye):
            self.close(f"peer said goodbye: {message.reason}")
        else:
            self._events.on_message(self, message)

    # Closing

    def close(self, reason: str, *, goodbye: str | None = None) -> None:
        """Start closing: say goodbye if asked, fail pending requests, stop all tasks."""
        if self._closing:
            return
        if goodbye is not None:
            with contextlib.suppress(Exception):
                self.send(Goodbye(goodbye))
        self._closing = True
        self.close_reason = reason
        log.debug("closing %r: %s", self, reason)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerDisconnected(self._gone()))
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self._read_task is not None and self._read_task is not current:
            self._read_task.cancel()
        self._writer.close()
        self._events.on_closed(self)

    async def _cleanup(self) -> None:
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        try:
            if others:
                await asyncio.gather(*others, return_exceptions=True)
        finally:
            self._drop_queued()
            try:
                await close_writer(self._writer, self._config.close_timeout)
            finally:
                self._done.set()

    async def wait_closed(self) -> None:
        """Wait until the connection and all its tasks have finished."""
        await self._done.wait()


async def close_writer(writer: asyncio.StreamWriter, timeout: float) -> None:
    """Close a stream, flushing for at most timeout seconds, then abort.

    Never raises, except CancelledError (after aborting the transport).
    """
    writer.close()
    try:
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
        return
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    except Exception:
        writer.transport.abort()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
