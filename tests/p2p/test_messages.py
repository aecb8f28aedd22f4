"""Session message encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.p2p import MalformedMessage, PeerAddress
from powerverse.p2p.messages import (
    Goodbye,
    Gossip,
    Message,
    PexRequest,
    PexResponse,
    Ping,
    Pong,
    Request,
    Response,
    Status,
    decode_message,
    encode_message,
)

KEY = bytes(range(32))

EXAMPLES: list[Message] = [
    Gossip(0, b""),
    Gossip(65535, b"payload"),
    Request(1, 7, b"get block 5"),
    Request(2**64 - 1, 0, b""),
    Response(9, Status.OK, b"block"),
    Response(9, Status.UNKNOWN_KIND, b""),
    Response(9, Status.ERROR, b"no such block"),
    PexRequest(),
    PexResponse(()),
    PexResponse(
        (
            PeerAddress(peer_id=KEY, host="127.0.0.1", port=1),
            PeerAddress(peer_id=bytes(32), host="::1", port=65535),
        )
    ),
    Ping(0),
    Pong(2**64 - 1),
    Goodbye("banned: spam"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_messages_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x63anything",
        b"\x01\x00",  # gossip without a full topic
        b"\x02" + bytes(9),  # request without its kind
        b"\x03" + bytes(8),  # response without status
        b"\x03" + bytes(8) + b"\x09",  # unknown status
        b"\x04extra",
        b"\x05",  # pex response without a count
        b"\x05\x01" + KEY,  # entry truncated
        b"\x05\x01" + KEY + b"\x00\x01\x0a" + b"localhost",  # host shorter than said
        b"\x05\x01" + KEY + b"\x00\x00\x01" + b"h",  # port 0
        b"\x05\x01" + KEY + b"\x00\x01\x02" + b"\xff\xfe",  # non-ascii host
        b"\x05\x01" + KEY + b"\x00\x01\x01" + b"h" + b"trailing",
        b"\x06" + bytes(7),
        b"\x07" + bytes(9),
        b"\x08" + b"x" * 600,
    ],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(data)


def test_unencodable_message_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode_message("not a message")  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_parse_or_raise_malformed(data: bytes) -> None:
    try:
        message = decode_message(data)
    except MalformedMessage:
        return
    assert decode_message(encode_message(message)) == message


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 65535), st.binary(max_size=100), st.integers(0, 2**64 - 1))
def test_gossip_and_requests_round_trip(topic: int, payload: bytes, request_id: int) -> None:
    for message in (Gossip(topic, payload), Request(request_id, topic, payload)):
        assert decode_message(encode_message(message)) == message
