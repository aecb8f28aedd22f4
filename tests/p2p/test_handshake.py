"""The handshake over in-memory streams (no sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings

from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.p2p import HandshakeError, HandshakeRefused, HandshakeTimeout, RefuseCode
from powerverse.p2p.exceptions import MalformedMessage
from powerverse.p2p.frames import encode_frame, read_frame
from powerverse.p2p.handshake import (
    PROTOCOL_VERSION,
    Auth,
    HandshakeResult,
    Hello,
    HelloAck,
    LocalNode,
    Ready,
    Refuse,
    decode_handshake_message,
    encode_handshake_message,
    initiate,
    respond,
)
from tests.p2p.conftest import CHAIN_ID, GENESIS


class PipeWriter:
    """Writes straight into the other side's StreamReader."""

    def __init__(self, target: asyncio.StreamReader) -> None:
        self.target = target

    def write(self, data: bytes) -> None:
        self.target.feed_data(data)

    async def drain(self) -> None:
        return None


def node(key: ConsensusKey | None = None, **kw: Any) -> LocalNode:
    kw.setdefault("chain_id", CHAIN_ID)
    kw.setdefault("genesis_hash", GENESIS)
    return LocalNode(key=key or ConsensusKey.generate(), **kw)


async def run_pair(
    dialer: LocalNode, listener: LocalNode, **initiate_kw: Any
) -> tuple[HandshakeResult | BaseException, HandshakeResult | BaseException]:
    to_listener, to_dialer = asyncio.StreamReader(), asyncio.StreamReader()
    initiate_kw.setdefault("timeout", 10)

    async def dial() -> HandshakeResult:
        try:
            return await initiate(to_dialer, PipeWriter(to_listener), dialer, **initiate_kw)
        finally:
            to_listener.feed_eof()

    async def listen() -> HandshakeResult:
        try:
            return await respond(to_listener, PipeWriter(to_dialer), listener, timeout=10)
        finally:
            to_dialer.feed_eof()

    d, listened = await asyncio.gather(dial(), listen(), return_exceptions=True)
    return d, listened


async def test_handshake_authenticates_both_sides_and_agrees_on_keys() -> None:
    dialer, listener = node(listen_port=4000), node(listen_port=5000, advertise_host="10.0.0.5")
    d, lst = await run_pair(dialer, listener, expected_peer=listener.key.public_key)
    assert isinstance(d, HandshakeResult) and isinstance(lst, HandshakeResult)
    assert d.peer_id == listener.key.public_key
    assert lst.peer_id == dialer.key.public_key
    assert (d.remote.listen_port, d.remote.listen_host) == (5000, "10.0.0.5")
    assert lst.remote.listen_port == 4000
    frame = d.cipher.seal(b"to listener")
    assert lst.cipher.open(frame[:4], frame[4:]) == b"to listener"
    frame = lst.cipher.seal(b"to dialer")
    assert d.cipher.open(frame[:4], frame[4:]) == b"to dialer"


async def test_sessions_have_fresh_keys() -> None:
    dialer, listener = node(), node()
    first, _ = await run_pair(dialer, listener)
    second, _ = await run_pair(dialer, listener)
    assert isinstance(first, HandshakeResult) and isinstance(second, HandshakeResult)
    assert first.cipher.seal(b"x") != second.cipher.seal(b"x")


@pytest.mark.parametrize(
    ("listener_kw", "code", "words"),
    [
        ({"chain_id": CHAIN_ID + 1}, RefuseCode.CHAIN_ID, "chain id mismatch"),
        ({"genesis_hash": bytes(32)}, RefuseCode.GENESIS, "genesis hash mismatch"),
    ],
)
async def test_wrong_network_is_refused_with_the_reason_on_both_sides(
    listener_kw: dict[str, Any], code: RefuseCode, words: str
) -> None:
    d, lst = await run_pair(node(), node(**listener_kw))
    assert isinstance(d, HandshakeRefused) and isinstance(lst, HandshakeRefused)
    assert d.code is lst.code is code
    assert d.by_remote and not lst.by_remote
    assert words in d.reason and d.reason == lst.reason
    assert "refused by peer" in str(d)


async def test_wrong_identity_is_refused_by_the_dialer() -> None:
    listener = node()
    d, lst = await run_pair(node(), listener, expected_peer=os.urandom(32))
    assert isinstance(d, HandshakeRefused) and d.code is RefuseCode.WRONG_IDENTITY
    assert not d.by_remote
    assert isinstance(lst, HandshakeRefused) and lst.by_remote
    assert lst.code is RefuseCode.WRONG_IDENTITY


async def test_self_connection_is_refused() -> None:
    key = ConsensusKey.generate()
    d, lst = await run_pair(node(key), node(key))
    assert isinstance(d, HandshakeRefused) and d.code is RefuseCode.SELF and d.by_remote
    assert isinstance(lst, HandshakeRefused) and lst.code is RefuseCode.SELF


async def test_admission_refusal_reaches_the_dialer() -> None:
    to_listener, to_dialer = asyncio.StreamReader(), asyncio.StreamReader()
    dialer = node()

    def banned(peer: bytes) -> tuple[RefuseCode, str] | None:
        assert peer == dialer.key.public_key
        return RefuseCode.BANNED, "banned for spam"

    results = await asyncio.gather(
        initiate(to_dialer, PipeWriter(to_listener), dialer, timeout=10),
        respond(to_listener, PipeWriter(to_dialer), node(), admit=banned, timeout=10),
        return_exceptions=True,
    )
    assert all(isinstance(r, HandshakeRefused) for r in results)
    assert isinstance(results[0], HandshakeRefused)
    assert results[0].code is RefuseCode.BANNED and "banned for spam" in results[0].reason


async def _read_message(reader: asyncio.StreamReader) -> object:
    _, body = await read_frame(reader, 4096)
    return decode_handshake_message(body)


async def test_a_listener_claiming_someone_elses_key_is_refused() -> None:
    """An impostor can copy the victim's public key but cannot sign the transcript."""
    victim, impostor = ConsensusKey.generate(), ConsensusKey.generate()
    to_listener, to_dialer = asyncio.StreamReader(), asyncio.StreamReader()

    async def impostor_side() -> object:
        hello = await _read_message(to_listener)
        assert isinstance(hello, Hello)
        eph, _ = bindings.crypto_kx_keypair()
        fake = Hello(PROTOCOL_VERSION, CHAIN_ID, GENESIS, victim.public_key, eph, 0, "")
        ack = HelloAck(fake, impostor.sign(b"listener" + bytes(32)))
        to_dialer.feed_data(encode_frame(encode_handshake_message(ack)))
        return await _read_message(to_listener)

    d, answer = await asyncio.gather(
        initiate(
            to_dialer, PipeWriter(to_listener), node(), expected_peer=victim.public_key, timeout=10
        ),
        impostor_side(),
        return_exceptions=True,
    )
    assert isinstance(d, HandshakeRefused) and d.code is RefuseCode.BAD_SIGNATURE
    assert isinstance(answer, Refuse) and answer.code is RefuseCode.BAD_SIGNATURE


async def test_a_dialer_claiming_someone_elses_key_is_refused() -> None:
    victim = ConsensusKey.generate()
    to_listener, to_dialer = asyncio.StreamReader(), asyncio.StreamReader()
    eph, _ = bindings.crypto_kx_keypair()
    hello = Hello(PROTOCOL_VERSION, CHAIN_ID, GENESIS, victim.public_key, eph, 0, "")
    to_listener.feed_data(encode_frame(encode_handshake_message(hello)))

    async def impostor_side() -> object:
        ack = await _read_message(to_dialer)
        assert isinstance(ack, HelloAck)
        to_listener.feed_data(encode_frame(encode_handshake_message(Auth(os.urandom(64)))))
        return await _read_message(to_dialer)

    lst, answer = await asyncio.gather(
        respond(to_listener, PipeWriter(to_dialer), node(), timeout=10),
        impostor_side(),
        return_exceptions=True,
    )
    assert isinstance(lst, HandshakeRefused) and lst.code is RefuseCode.BAD_SIGNATURE
    assert isinstance(answer, Refuse) and answer.code is RefuseCode.BAD_SIGNATURE


async def test_a_low_order_ephemeral_key_is_refused() -> None:
    to_listener, to_dialer = asyncio.StreamReader(), asyncio.StreamReader()
    hello = Hello(PROTOCOL_VERSION, CHAIN_ID, GENESIS, os.urandom(32), bytes(32), 0, "")
    to_listener.feed_data(encode_frame(encode_handshake_message(hello)))
    with pytest.raises(HandshakeRefused) as info:
        await respond(to_listener, PipeWriter(to_dialer), node(), timeout=10)
    assert info.value.code is RefuseCode.PROTOCOL


async def test_silence_times_out() -> None:
    with pytest.raises(HandshakeTimeout):
        await respond(
            asyncio.StreamReader(), PipeWriter(asyncio.StreamReader()), node(), timeout=0.05
        )


async def test_out_of_order_messages_are_handshake_errors() -> None:
    to_listener = asyncio.StreamReader()
    to_listener.feed_data(encode_frame(encode_handshake_message(Ready())))
    with pytest.raises(HandshakeError, match="protocol error"):
        await respond(to_listener, PipeWriter(asyncio.StreamReader()), node(), timeout=10)


@pytest.mark.parametrize(
    "message",
    [
        Hello(1, 2, bytes(32), bytes(range(32)), bytes(32), 30303, "example.org"),
        HelloAck(Hello(1, 2, bytes(32), bytes(32), bytes(32), 0, ""), bytes(64)),
        Auth(bytes(range(64))),
        Ready(),
        Refuse(RefuseCode.CHAIN_ID, "chain id mismatch"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_handshake_messages_round_trip(message: Any) -> None:
    assert decode_handshake_message(encode_handshake_message(message)) == message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x09",
        b"\x01NOPE" + bytes(120),
        b"\x03" + bytes(63),
        b"\x04\x00",
        b"\x05",
        b"\x05\x01" + b"x" * 600,
    ],
)
def test_malformed_handshake_messages_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_handshake_message(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_handshake_bodies_parse_or_raise_malformed(body: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        decode_handshake_message(body)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_to_either_side_raise_only_handshake_errors(data: bytes, dial: bool) -> None:
    async def run() -> None:
        incoming, outgoing = asyncio.StreamReader(), asyncio.StreamReader()
        incoming.feed_data(data)
        incoming.feed_eof()
        side = initiate if dial else respond
        try:
            await side(incoming, PipeWriter(outgoing), node(), timeout=10)
        except HandshakeError:
            return
        raise AssertionError("random bytes completed a handshake")

    asyncio.run(run())


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.binary(min_size=64, max_size=64))
def test_random_hellos_and_signatures_are_refused(host_noise: bytes, signature: bytes) -> None:
    """Well-formed frames with junk keys and signatures end in a refusal, never a crash."""

    async def run() -> None:
        to_dialer = asyncio.StreamReader()
        hello = Hello(
            PROTOCOL_VERSION,
            CHAIN_ID,
            GENESIS,
            (host_noise * 32)[:32],
            (host_noise * 32)[-32:],
            1,
            "",
        )
        to_dialer.feed_data(encode_frame(encode_handshake_message(HelloAck(hello, signature))))
        to_dialer.feed_eof()
        with pytest.raises(HandshakeError):
            await initiate(to_dialer, PipeWriter(asyncio.StreamReader()), node(), timeout=10)

    asyncio.run(run())
