"""The p2p host: listens, dials, keeps sessions, and offers gossip and request/response.

Upper layers see opaque payloads with 16-bit topics (gossip) and kinds (requests).
A host keeps itself connected: it dials bootnodes (retrying with backoff), asks peers for
more addresses (peer exchange) and dials those until it has `target_peers` sessions.
Misbehaving peers lose score and are disconnected and banned by peer id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.p2p import handshake
from powerverse.p2p.address import PeerAddress, short_id
from powerverse.p2p.addressbook import AddressBook
from powerverse.p2p.config import P2PConfig
from powerverse.p2p.connection import Connection, Direction, close_writer
from powerverse.p2p.exceptions import (
    DialFailed,
    HandshakeError,
    HandshakeRefused,
    HostNotRunning,
    InvalidAddress,
    P2PError,
    PayloadTooLarge,
    PeerBanned,
    PeerNotConnected,
    RequestFailed,
)
from powerverse.p2p.gossip import (
    Deliver,
    GossipMessage,
    GossipRouter,
    GossipStats,
    SeenCache,
    Validator,
    check_topic,
)
from powerverse.p2p.handshake import LocalNode, Refusal, RefuseCode
from powerverse.p2p.messages import (
    MAX_KIND,
    Gossip,
    Message,
    PexRequest,
    PexResponse,
    Ping,
    Request,
    Response,
    Status,
)
from powerverse.p2p.peers import Ban, BanList, Scores

__all__ = ["HandshakeFailure", "Host", "PeerInfo", "RequestHandler"]

log = logging.getLogger(__name__)

RequestHandler = Callable[[bytes, bytes], Awaitable[bytes]]
"""An async function (peer_id, payload) -> response payload; may raise RequestFailed."""

PeerCallback = Callable[[bytes], None]


@dataclass(frozen=True)
class PeerInfo:
    """A snapshot of one session."""

    peer_id: bytes
    direction: Direction
    address: PeerAddress | None
    remote: tuple[str, int]
    score: float
    connected_since: float
    bytes_in: int
    bytes_out: int
    messages_in: int
    messages_out: int
    dropped: int


@dataclass(frozen=True)
class HandshakeFailure:
    """A handshake that did not complete, kept for introspection and tests."""

    at: float
    direction: Direction
    remote: tuple[str, int]
    peer_id: bytes | None
    code: RefuseCode | None
    reason: str
    by_remote: bool


def _remote_of(writer: asyncio.StreamWriter) -> tuple[str, int]:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return ("?", 0)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("p2p task failed", exc_info=task.exception())


def _check_kind(kind: int) -> int:
    if not isinstance(kind, int) or not 0 <= kind <= MAX_KIND:
        raise ValueError(f"request kind must be an integer in 0..{MAX_KIND}, got {kind!r}")
    return kind


class _Events:
    """What sessions report, routed to the host's private handlers."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def on_message(self, conn: Connection, message: Message) -> None:
        self._host._session_message(conn, message)

    def on_violation(self, conn: Connection, reason: str) -> None:
        self._host._session_violation(conn, reason)

    def on_rate_limited(self, conn: Connection) -> None:
        self._host._session_rate_limited(conn)

    def on_closed(self, conn: Connection) -> None:
        self._host._session_closed(conn)


class Host:
    """A node's presence on the p2p network."""

    def __init__(
        self,
        key: bytes | ConsensusKey,
        *,
        chain_id: int,
        genesis_hash: bytes,
        config: P2PConfig | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int | None = 0,
        advertise_host: str | None = None,
        bootnodes: Iterable[str | PeerAddress] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key if isinstance(key, ConsensusKey) else ConsensusKey.from_seed(key)
        if not isinstance(chain_id, int) or not 0 <= chain_id < 2**64:
            raise ValueError("chain_id must fit in 64 bits")
        if not isinstance(genesis_hash, bytes) or len(genesis_hash) != 32:
            raise ValueError("genesis_hash must be 32 bytes")
        if advertise_host is not None and (
            not advertise_host.isascii()
            or not advertise_host.isprintable()
            or len(advertise_host) > 253
            or any(c in advertise_host for c in "@ /")
        ):
            raise ValueError("advertise_host must be an ascii host name or address")
        self.config = config or P2PConfig()
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._advertise_host = advertise_host or ""
        self._clock = clock
        self._bans = BanList(clock)
        self._scores = Scores(clock, self.config.score_recovery_per_s)
        self._book = AddressBook(
            self_id=self.peer_id,
            capacity=self.config.address_book_size,
            backoff_initial=self.config.dial_backoff_initial,
            backoff_max=self.config.dial_backoff_max,
            max_failures=self.config.max_dial_failures,
        )
        for bootnode in bootnodes:
            self._book.add_bootnode(
                bootnode if isinstance(bootnode, PeerAddress) else PeerAddress.parse(bootnode)
            )
        self._gossip = GossipRouter(
            seen=SeenCache(self.config.seen_cache_size, self.config.seen_ttl, clock),
            broadcast=self._broadcast,
            penalize=self.penalize,
            reject_penalty=self.config.reject_penalty,
        )
        self._handlers: dict[int, RequestHandler] = {}
        self._connections: dict[bytes, Connection] = {}
        self._dials: dict[bytes, asyncio.Task[bytes]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failures: deque[HandshakeFailure] = deque(
            maxlen=self.config.max_handshake_failures_kept
        )
        self._on_connect: list[PeerCallback] = []
        self._on_disconnect: list[PeerCallback] = []
        self._server: asyncio.Server | None = None
        self._local: LocalNode | None = None
        self._pending_handshakes = 0
        self._next_pex = 0.0
        self._running = False
        self._stopping = False

    # Identity and lifecycle

    @property
    def peer_id(self) -> bytes:
        """This node's peer id: its 32-byte ed25519 public key."""
        return self._key.public_key

    @property
    def listen_address(self) -> PeerAddress | None:
        """Where this host listens, as "pubkeyhex@host:port" material (None if not listening)."""
        if self._local is None or self._local.listen_port == 0:
            return None
        host = self._advertise_host or self._listen_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return PeerAddress(peer_id=self.peer_id, host=host, port=self._local.listen_port)

    @property
    def running(self) -> bool:
        """Whether start() has run and stop() has not."""
        return self._running

    async def start(self) -> None:
        """Listen (unless listen_port is None) and start the maintenance loop."""
        if self._running or self._stopping:
            raise P2PError("a host can be started once")
        port = 0
        if self._listen_port is not None:
            self._server = await asyncio.start_server(
                self._accept, self._listen_host, self._listen_port
            )
            port = int(self._server.sockets[0].getsockname()[1])
        self._local = LocalNode(
            key=self._key,
            chain_id=self.chain_id,
            genesis_hash=self.genesis_hash,
            listen_port=port,
            advertise_host=self._advertise_host,
        )
        self._running = True
        self._spawn(self._maintain())
        log.info("p2p host %s listening on %s", short_id(self.peer_id), self.listen_address)

    async def stop(self) -> None:
        """Close every session, the listener and every task; safe to call twice."""
        if self._stopping or not self._running:
            self._running = False
            return
        self._stopping = True
        self._running = False
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # let accepted-but-unstarted handlers register themselves
        sessions = list(self._connections.values())
        for conn in sessions:
            conn.close("host stopping", goodbye="shutting down")
        # Let sessions finish their own cleanup (a second cancel could interrupt it).
        waiters = [asyncio.ensure_future(conn.wait_closed()) for conn in sessions]
        if waiters:
            _, late = await asyncio.wait(waiters, timeout=2 * self.config.close_timeout + 1)
            for waiter in late:
                waiter.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        current = asyncio.current_task()
        while tasks := [t for t in self._tasks if t is not current]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _require_running(self) -> LocalNode:
        if not self._running or self._local is None:
            raise HostNotRunning("the p2p host is not running")
        return self._local

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], *, log_errors: bool = True
    ) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if log_errors:
            task.add_done_callback(_log_failure)
        return task

    # Connecting

    async def connect(self, address: str | PeerAddress) -> bytes:
        """Dial address and complete the handshake; return the peer id.

        Returns at once if already connected. Raises InvalidAddress, PeerBanned,
        DialFailed, HandshakeRefused (with the reason, from either side) or HandshakeError.
        """
        self._require_running()
        target = address if isinstance(address, PeerAddress) else PeerAddress.parse(address)
        if target.peer_id == self.peer_id:
            raise HandshakeRefused(RefuseCode.SELF, "connection to self", by_remote=False)
        ban = self._bans.get(target.peer_id)
        if ban is not None:
            raise PeerBanned(f"peer {short_id(target.peer_id)} is banned: {ban.reason}")
        if self.is_connected(target.peer_id):
            return target.peer_id
        dial = self._dials.get(target.peer_id)
        if dial is None:
            dial = self._spawn(self._dial(target), log_errors=False)
            self._dials[target.peer_id] = dial
            dial.add_done_callback(lambda _: self._dials.pop(target.peer_id, None))
        result: bytes = await asyncio.shield(dial)
        return result

    async def disconnect(self, peer_id: bytes, reason: str = "disconnected") -> None:
        """Close the session with peer_id (telling it why) and wait until it is closed."""
        conn = self._connections.get(peer_id)
        if conn is not None:
            conn.close(reason, goodbye=reason)
            await conn.wait_closed()

    async def _dial(self, target: PeerAddress) -> bytes:
        local = self._require_running()
        loop = asyncio.get_running_loop()
        self._book.dial_started(target.peer_id, loop.time())
        try:
            async with asyncio.timeout(self.config.dial_timeout):
                reader, writer = await asyncio.open_connection(target.host, target.port)
        except (OSError, TimeoutError) as err:
            self._book.dial_failed(target.peer_id, loop.time())
            raise DialFailed(f"cannot reach {target}: {err or type(err).__name__}") from err
        remote = _remote_of(writer)
        try:
            session = await handshake.initiate(
                reader,
                writer,
                local,
                expected_peer=target.peer_id,
                admit=functools.partial(self._admit, Direction.OUTBOUND),
                timeout=self.config.handshake_timeout,
            )
        except HandshakeError as err:
            self._record_failure(Direction.OUTBOUND, remote, target.peer_id, err)
            self._book.dial_failed(target.peer_id, loop.time())
            await close_writer(writer, self.config.close_timeout)
            raise
        except BaseException:
            await close_writer(writer, self.config.close_timeout)
            raise
        conn = self._open_session(reader, writer, session, Direction.OUTBOUND, remote, target)
        self._spawn(conn.run())
        if conn.closing and not self.is_connected(target.peer_id):
            raise HandshakeError(f"session with {target} closed at once: {conn.close_reason}")
        return target.peer_id

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The server's callback: serve the stream in a task of our own (tracked for stop())."""
        self._spawn(self._serve_inbound(reader, writer))

    async def _serve_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        handed_over = False
        try:
            local = self._local
            if (
                not self._running
                or local is None
                or self._pending_handshakes >= self.config.max_pending_handshakes
            ):
                return
            remote = _remote_of(writer)
            self._pending_handshakes += 1
            try:
                session = await handshake.respond(
                    reader,
                    writer,
                    local,
                    admit=functools.partial(self._admit, Direction.INBOUND),
                    timeout=self.config.handshake_timeout,
                )
            except HandshakeError as err:
                self._record_failure(Direction.INBOUND, remote, None, err)
                return
            finally:
                self._pending_handshakes -= 1
            conn = self._open_session(
                reader,
                writer,
                session,
                Direction.INBOUND,
                remote,
                self._advertised(session, remote),
            )
            handed_over = True
            await conn.run()
        finally:
            if not handed_over:
                await close_writer(writer, self.config.close_timeout)

    @staticmethod
    def _advertised(
        session: handshake.HandshakeResult, remote: tuple[str, int]
    ) -> PeerAddress | None:
        if session.remote.listen_port == 0:
            return None
        host = session.remote.listen_host or remote[0]
        try:
            return PeerAddress(peer_id=session.peer_id, host=host, port=session.remote.listen_port)
        except InvalidAddress:
            return None

    def _admit(self, direction: Direction, peer_id: bytes) -> Refusal | None:
        """Whether a handshake with peer_id may go on (checked before and after authentication)."""
        if not self._running:
            return RefuseCode.SHUTTING_DOWN, "node is shutting down"
        ban = self._bans.get(peer_id)
        if ban is not None:
            left = ban.until - self._clock()
            return (
                RefuseCode.BANNED,
                f"peer {short_id(peer_id)} is banned for {left:.0f} s: {ban.reason}",
            )
        existing = self._connections.get(peer_id)
        if (
            existing is not None
            and not existing.closing
            and not self._new_wins(existing, direction)
        ):
            return RefuseCode.DUPLICATE, f"already connected to peer {short_id(peer_id)}"
        if existing is None and len(self._connections) >= self.config.max_peers:
            return RefuseCode.TOO_MANY_PEERS, f"too many peers ({self.config.max_peers})"
        return None

    def _new_wins(self, existing: Connection, direction: Direction) -> bool:
        """Of two sessions with one peer, both ends keep the one the smaller peer id dialed."""
        if existing.direction is direction:
            return False
        new_dialer = self.peer_id if direction is Direction.OUTBOUND else existing.peer_id
        return new_dialer == min(self.peer_id, existing.peer_id)

    def _open_session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: handshake.HandshakeResult,
        direction: Direction,
        remote: tuple[str, int],
        listen_address: PeerAddress | None,
    ) -> Connection:
        """Wrap an authenticated stream and register it (or close it as refused)."""
        conn = Connection(
            reader=reader,
            writer=writer,
            session=session,
            direction=direction,
            remote=remote,
            listen_address=listen_address,
            config=self.config,
            clock=self._clock,
            events=_Events(self),
        )
        refusal = self._admit(direction, conn.peer_id)
        if refusal is not None:
            conn.close(refusal[1], goodbye=refusal[1])
            return conn
        existing = self._connections.get(conn.peer_id)
        if existing is not None:
            existing.close("replaced by a simultaneous connection", goodbye="duplicate connection")
        self._connections[conn.peer_id] = conn
        self._book.connected(listen_address, conn.peer_id, asyncio.get_running_loop().time())
        log.info("connected to %s (%s, %s)", short_id(conn.peer_id), direction.value, remote)
        if len(self._connections) < self.config.target_peers:
            self._ask_addresses(conn)
        for callback in self._on_connect:
            self._call(callback, conn.peer_id)
        return conn

    def _record_failure(
        self, direction: Direction, remote: tuple[str, int], peer_id: bytes | None, err: P2PError
    ) -> None:
        refused = isinstance(err, HandshakeRefused)
        failure = HandshakeFailure(
            at=self._clock(),
            direction=direction,
            remote=remote,
            peer_id=peer_id,
            code=err.code if isinstance(err, HandshakeRefused) else None,
            reason=err.reason if isinstance(err, HandshakeRefused) else str(err),
            by_remote=err.by_remote if isinstance(err, HandshakeRefused) else False,
        )
        self._failures.append(failure)
        log.info(
            "handshake %s %s failed: %s%s",
            direction.value,
            remote,
            "refused by peer: " if refused and failure.by_remote else "",
            failure.reason,
        )

    # Session events (called by Connection through _Events)

    def _session_message(self, conn: Connection, message: Message) -> None:
        if isinstance(message, Gossip):
            self._on_gossip(conn, message)
        elif isinstance(message, Request):
            self._on_request(conn, message)
        elif isinstance(message, PexRequest):
            conn.send(PexResponse(self._shareable_addresses(exclude=conn.peer_id)))
        elif isinstance(message, PexResponse):
            self._on_addresses(conn, message)

    def _session_violation(self, conn: Connection, reason: str) -> None:
        self.ban(conn.peer_id, reason)

    def _session_rate_limited(self, conn: Connection) -> None:
        self.penalize(conn.peer_id, self.config.rate_limit_penalty, "rate limit exceeded")

    def _session_closed(self, conn: Connection) -> None:
        if self._connections.get(conn.peer_id) is not conn:
            return
        del self._connections[conn.peer_id]
        with contextlib.suppress(RuntimeError):
            self._book.disconnected(conn.peer_id, asyncio.get_running_loop().time())
        log.info("disconnected from %s: %s", short_id(conn.peer_id), conn.close_reason)
        for callback in self._on_disconnect:
            self._call(callback, conn.peer_id)

    @staticmethod
    def _call(callback: PeerCallback, peer_id: bytes) -> None:
        try:
            callback(peer_id)
        except Exception:
            log.exception("peer callback failed")

    # Gossip

    def subscribe(self, topic: int, validate: Validator, deliver: Deliver) -> None:
        """Handle gossip on topic: validate (sync or async) each new message, then deliver.

        ACCEPT: relayed to every other peer, then delivered. IGNORE: dropped.
        REJECT: dropped and the sending peer penalized. One subscriber per topic.
        """
        self._gossip.subscribe(topic, validate, deliver)

    def unsubscribe(self, topic: int) -> None:
        """Stop handling topic (its messages are then neither delivered nor relayed)."""
        self._gossip.unsubscribe(topic)

    def publish(self, topic: int, payload: bytes) -> bytes:
        """Send payload on topic to every peer; return the message id. Not delivered locally."""
        check_topic(topic)
        self._check_payload(payload)
        return self._gossip.publish(topic, payload)

    @property
    def gossip_stats(self) -> GossipStats:
        """Counters of gossip traffic."""
        return self._gossip.stats

    def _check_payload(self, payload: bytes) -> None:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError("payload must be bytes")
        if len(payload) > self.config.max_payload_size:
            raise PayloadTooLarge(
                f"payload of {len(payload)} bytes exceeds {self.config.max_payload_size}"
            )

    def _broadcast(self, gossip: Gossip, exclude: bytes | None) -> int:
        sent = 0
        for conn in list(self._connections.values()):
            if conn.peer_id != exclude and conn.send(gossip):
                sent += 1
        return sent

    def _on_gossip(self, conn: Connection, gossip: Gossip) -> None:
        message = self._gossip.admit(conn.peer_id, gossip)
        if message is None:
            return
        job = functools.partial(self._process_gossip, message)
        if not conn.enqueue(job, functools.partial(self._gossip.abandon, message)):
            self._gossip.abandon(message)
            self.penalize(conn.peer_id, self.config.queue_overflow_penalty, "gossip queue overflow")

    async def _process_gossip(self, message: GossipMessage) -> None:
        await self._gossip.process(message)

    # Request/response

    def on_request(self, kind: int, handler: RequestHandler) -> None:
        """Answer requests of kind with handler(peer_id, payload) -> bytes (one per kind)."""
        _check_kind(kind)
        if kind in self._handlers:
            raise ValueError(f"request kind {kind} already has a handler")
        self._handlers[kind] = handler

    def remove_request_handler(self, kind: int) -> None:
        """Stop answering requests of kind (they then fail with UnknownRequestKind)."""
        self._handlers.pop(kind, None)

    async def request(
        self, peer_id: bytes, kind: int, payload: bytes, *, timeout: float | None = None
    ) -> bytes:
        """Send a request to peer_id and return its response payload.

        Raises PeerNotConnected, PeerDisconnected, RequestTimeout, UnknownRequestKind,
        RequestBusy or RemoteError (all RequestError). At most max_outbound_requests are
        in flight per peer; further calls wait for a slot within their timeout.
        """
        _check_kind(kind)
        self._check_payload(payload)
        conn = self._connections.get(peer_id)
        if conn is None or conn.closing:
            raise PeerNotConnected(f"not connected to peer {short_id(peer_id)}")
        wait = self.config.request_timeout if timeout is None else timeout
        return await conn.request(kind, bytes(payload), wait)

    def _on_request(self, conn: Connection, request: Request) -> None:
        handler = self._handlers.get(request.kind)
        if handler is None:
            conn.send(Response(request.request_id, Status.UNKNOWN_KIND, b""))
        elif conn.inbound_requests >= self.config.max_inbound_requests:
            conn.send(Response(request.request_id, Status.BUSY, b""))
        else:
            conn.inbound_requests += 1
            conn.spawn(functools.partial(self._serve, conn, request, handler))

    async def _serve(self, conn: Connection, request: Request, handler: RequestHandler) -> None:
        try:
            async with asyncio.timeout(self.config.handler_timeout):
                result = await handler(conn.peer_id, request.payload)
            if not isinstance(result, bytes | bytearray | memoryview):
                raise TypeError(f"request handler returned {type(result).__name__}, not bytes")
            if len(result) > self.config.max_payload_size:
                raise PayloadTooLarge(f"response of {len(result)} bytes is too large")
            response = Response(request.request_id, Status.OK, bytes(result))
        except RequestFailed as err:
            response = Response(request.request_id, Status.ERROR, str(err).encode())
        except TimeoutError:
            response = Response(request.request_id, Status.ERROR, b"handler timed out")
        except Exception:
            log.exception("request handler for kind %d failed", request.kind)
            response = Response(request.request_id, Status.ERROR, b"internal error")
        finally:
            conn.inbound_requests -= 1
        conn.send(response)

    # Discovery

    def _ask_addresses(self, conn: Connection) -> None:
        conn.pex_pending = True
        conn.send(PexRequest())

    def _shareable_addresses(self, exclude: bytes) -> tuple[PeerAddress, ...]:
        found = [
            c.listen_address
            for c in self._connections.values()
            if c.peer_id != exclude and c.listen_address is not None and not c.closing
        ]
        return tuple(found[: self.config.pex_max_addresses])

    def _on_addresses(self, conn: Connection, message: PexResponse) -> None:
        if not conn.pex_pending:
            return  # unsolicited: ignore
        conn.pex_pending = False
        now = asyncio.get_running_loop().time()
        for address in message.addresses[: self.config.pex_max_addresses]:
            self._book.learn(address, now)

    def add_address(self, address: str | PeerAddress, *, bootnode: bool = False) -> None:
        """Remember a peer address to dial (a bootnode is retried forever)."""
        target = address if isinstance(address, PeerAddress) else PeerAddress.parse(address)
        if bootnode:
            self._book.add_bootnode(target)
        else:
            self._book.learn(target, 0.0)

    def known_addresses(self) -> list[PeerAddress]:
        """Every address in the address book, bootnodes first."""
        return self._book.addresses()

    # Maintenance

    async def _maintain(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:
                log.exception("p2p maintenance failed")
            await asyncio.sleep(self.config.tick_interval)

    def _tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for conn in list(self._connections.values()):
            if now - conn.last_received > self.config.idle_timeout:
                conn.close("idle timeout", goodbye="idle timeout")
            elif now - conn.last_ping >= self.config.ping_interval:
                conn.last_ping = now
                conn.send(Ping(secrets.randbits(64)))
        if now >= self._next_pex:
            self._next_pex = now + self.config.pex_interval
            for conn in list(self._connections.values()):
                self._ask_addresses(conn)
        self._dial_due(now)
        self._scores.prune()

    def _dial_due(self, now: float) -> None:
        want = self.config.target_peers - len(self._connections) - len(self._dials)
        slots = self.config.max_concurrent_dials - len(self._dials)

        def skip(peer_id: bytes) -> bool:
            return (
                peer_id in self._connections
                or peer_id in self._dials
                or self._bans.is_banned(peer_id)
            )

        for address, bootnode in self._book.due(now, skip):
            if slots <= 0 or len(self._connections) + len(self._dials) >= self.config.max_peers:
                break
            if not bootnode and want <= 0:
                continue
            slots -= 1
            want -= 1
            self._spawn(self._background_dial(address))

    async def _background_dial(self, address: PeerAddress) -> None:
        try:
            await self.connect(address)
        except (P2PError, OSError) as err:
            log.debug("dial %s failed: %s", address, err)

    # Reputation

    def penalize(self, peer_id: bytes, amount: float, reason: str) -> None:
        """Lower peer_id's score by amount; at or below the threshold it is banned."""
        score = self._scores.penalize(peer_id, amount)
        log.debug("penalized %s by %s (%s): score %.1f", short_id(peer_id), amount, reason, score)
        if score <= self.config.ban_threshold:
            self.ban(peer_id, f"score {score:.0f}: {reason}")

    def ban(self, peer_id: bytes, reason: str, *, duration: float | None = None) -> Ban:
        """Ban peer_id (default config.ban_duration) and disconnect it, telling it why."""
        ban = self._bans.ban(
            peer_id, self.config.ban_duration if duration is None else duration, reason
        )
        self._scores.reset(peer_id)
        log.warning("banned %s: %s", short_id(peer_id), reason)
        conn = self._connections.get(peer_id)
        if conn is not None:
            conn.close(f"banned: {reason}", goodbye=f"banned: {reason}")
        return ban

    def unban(self, peer_id: bytes) -> None:
        """Lift a ban early."""
        self._bans.unban(peer_id)

    def banned(self) -> list[Ban]:
        """Bans in force now."""
        return self._bans.active()

    def is_banned(self, peer_id: bytes) -> bool:
        """Whether peer_id is banned now."""
        return self._bans.is_banned(peer_id)

    def score(self, peer_id: bytes) -> float:
        """peer_id's current score (0 neutral, lower is worse)."""
        return self._scores.get(peer_id)

    # Introspection

    def is_connected(self, peer_id: bytes) -> bool:
        """Whether a live session with peer_id exists."""
        conn = self._connections.get(peer_id)
        return conn is not None and not conn.closing

    def peers(self) -> list[PeerInfo]:
        """Snapshots of every live session."""
        return [self._info(c) for c in list(self._connections.values()) if not c.closing]

    def peer(self, peer_id: bytes) -> PeerInfo | None:
        """Snapshot of the session with peer_id, if any."""
        conn = self._connections.get(peer_id)
        return self._info(conn) if conn is not None and not conn.closing else None

    def _info(self, conn: Connection) -> PeerInfo:
        return PeerInfo(
            peer_id=conn.peer_id,
            direction=conn.direction,
            address=conn.listen_address,
            remote=conn.remote,
            score=self._scores.get(conn.peer_id),
            connected_since=conn.connected_since,
            bytes_in=conn.bytes_in,
            bytes_out=conn.bytes_out,
            messages_in=conn.messages_in,
            messages_out=conn.messages_out,
            dropped=conn.dropped,
        )

    def handshake_failures(self) -> list[HandshakeFailure]:
        """Recent handshakes that failed, oldest first (bounded)."""
        return list(self._failures)

    def on_connect(self, callback: PeerCallback) -> None:
        """Call callback(peer_id) whenever a session is established."""
        self._on_connect.append(callback)

    def on_disconnect(self, callback: PeerCallback) -> None:
        """Call callback(peer_id) whenever an established session ends."""
        self._on_disconnect.append(callback)
