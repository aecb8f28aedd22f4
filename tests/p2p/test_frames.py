"""Length-prefixed framing."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.p2p.exceptions import ConnectionClosed, FrameTooLarge
from powerverse.p2p.frames import encode_frame, frame_length, read_frame


def _reader(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_frames_round_trip() -> None:
    bodies = [b"", b"x", bytes(range(256)) * 10]
    reader = _reader(b"".join(encode_frame(b) for b in bodies))
    for body in bodies:
        header, got = await read_frame(reader, 4096)
        assert got == body and header == len(body).to_bytes(4, "big")
    with pytest.raises(ConnectionClosed):
        await read_frame(reader, 4096)


async def test_oversized_length_is_refused_before_the_body_arrives() -> None:
    # Only the header is there and the stream stays open: waiting for the body would hang.
    reader = _reader((10_000).to_bytes(4, "big"), eof=False)
    async with asyncio.timeout(10):
        with pytest.raises(FrameTooLarge):
            await read_frame(reader, 1024)


def test_frame_length_limit_is_inclusive() -> None:
    assert frame_length((1024).to_bytes(4, "big"), 1024) == 1024
    with pytest.raises(FrameTooLarge):
        frame_length((1025).to_bytes(4, "big"), 1024)


async def test_truncated_frames_are_connection_closed() -> None:
    with pytest.raises(ConnectionClosed):
        await read_frame(_reader(b"\x00\x00"), 1024)
    with pytest.raises(ConnectionClosed):
        await read_frame(_reader(encode_frame(b"abcdef")[:-1]), 1024)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=200))
def test_random_streams_yield_bounded_frames_or_clean_errors(data: bytes, limit: int) -> None:
    async def run() -> None:
        reader = _reader(data)
        consumed = 0
        while True:
            try:
                header, body = await read_frame(reader, limit)
            except (FrameTooLarge, ConnectionClosed):
                return
            assert len(body) <= limit
            consumed += len(header) + len(body)
            assert consumed <= len(data)

    asyncio.run(run())
