"""Shared helpers for p2p tests: hosts on 127.0.0.1 ephemeral ports, a fake clock, raw peers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.p2p import Host, P2PConfig
from powerverse.p2p.connection import close_writer
from powerverse.p2p.exceptions import ConnectionClosed, ProtocolViolation
from powerverse.p2p.frames import read_frame
from powerverse.p2p.handshake import HandshakeResult, LocalNode, initiate
from powerverse.p2p.messages import Goodbye, Message, decode_message, encode_message

CHAIN_ID = 4242
GENESIS = bytes(range(32))


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fast_config(**overrides: Any) -> P2PConfig:
    """A config with short intervals so discovery and reconnects happen quickly in tests."""
    values: dict[str, Any] = {
        "handshake_timeout": 10.0,
        "tick_interval": 0.05,
        "dial_backoff_initial": 0.05,
        "dial_backoff_max": 0.5,
        "pex_interval": 0.5,
        "request_timeout": 10.0,
    }
    values.update(overrides)
    return P2PConfig(**values)


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll condition until true; fail the test (not a timing assertion) after a long timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


HostFactory = Callable[..., Awaitable[Host]]


@pytest.fixture
async def make_host() -> AsyncIterator[HostFactory]:
    """Start hosts on ephemeral ports; every one is stopped at the end of the test."""
    started: list[Host] = []

    async def factory(
        key: ConsensusKey | bytes | None = None, *, config: P2PConfig | None = None, **kw: Any
    ) -> Host:
        kw.setdefault("chain_id", CHAIN_ID)
        kw.setdefault("genesis_hash", GENESIS)
        host = Host(key or ConsensusKey.generate(), config=config or fast_config(), **kw)
        await host.start()
        started.append(host)
        return host

    yield factory
    for host in reversed(started):
        await host.stop()


class RawPeer:
    """A hand-driven peer: runs the real handshake, then writes whatever frames a test wants."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: HandshakeResult,
        key: ConsensusKey,
    ) -> None:
        self.peer_id = key.public_key  # ours, as the host knows us
        self.reader = reader
        self.writer = writer
        self.session = session

    @classmethod
    async def connect(
        cls,
        host: Host,
        key: ConsensusKey | None = None,
        *,
        chain_id: int = CHAIN_ID,
        genesis_hash: bytes = GENESIS,
    ) -> RawPeer:
        address = host.listen_address
        assert address is not None
        key = key or ConsensusKey.generate()
        reader, writer = await asyncio.open_connection(address.host, address.port)
        local = LocalNode(key=key, chain_id=chain_id, genesis_hash=genesis_hash)
        try:
            session = await initiate(
                reader, writer, local, expected_peer=address.peer_id, timeout=10.0
            )
        except BaseException:
            await close_writer(writer, 1.0)
            raise
        return cls(reader, writer, session, key)

    def frame(self, message: Message) -> bytes:
        """Seal message as the next frame (advancing our send counter) without sending it."""
        return self.session.cipher.seal(encode_message(message))

    def send(self, message: Message) -> bytes:
        """Seal and send message; return the frame bytes."""
        data = self.frame(message)
        self.writer.write(data)
        return data

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def receive(self) -> Message:
        header, body = await read_frame(self.reader, 2**32 - 1)
        return decode_message(self.session.cipher.open(header, body))

    async def expect(self, kind: type[Message]) -> Message:
        """Receive until a message of kind arrives (skipping pings and peer exchange)."""
        while True:
            message = await self.receive()
            if isinstance(message, kind):
                return message

    async def closed_by_remote(self, timeout: float = 30.0) -> str | None:
        """Read until the host closes the stream; return its goodbye reason, if it sent one."""
        reason = None
        async with asyncio.timeout(timeout):
            while True:
                try:
                    message = await self.receive()
                except (ConnectionClosed, ProtocolViolation, ConnectionError):
                    return reason
                if isinstance(message, Goodbye):
                    reason = message.reason

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await close_writer(self.writer, 1.0)


@pytest.fixture
async def raw_peers() -> AsyncIterator[list[RawPeer]]:
    """A list tests append RawPeers to; all are closed at the end."""
    peers: list[RawPeer] = []
    yield peers
    for peer in peers:
        await peer.close()
