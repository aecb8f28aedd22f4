"""Length-prefixed frames: a 4-byte big-endian length, then that many bytes.

The length is checked against the limit before any of the body is read, so a peer
cannot make us buffer more than one maximum frame.
"""

from __future__ import annotations

import asyncio

from powerverse.p2p.config import FRAME_HEADER_LEN
from powerverse.p2p.exceptions import ConnectionClosed, FrameTooLarge

__all__ = ["encode_frame", "frame_length", "read_frame"]


def encode_frame(body: bytes) -> bytes:
    """Return body with its 4-byte big-endian length in front."""
    return len(body).to_bytes(FRAME_HEADER_LEN, "big") + body


def frame_length(header: bytes, max_size: int) -> int:
    """Return the body length a header announces; FrameTooLarge above max_size."""
    length = int.from_bytes(header, "big")
    if length > max_size:
        raise FrameTooLarge(f"frame of {length} bytes exceeds the {max_size}-byte limit")
    return length


async def read_frame(reader: asyncio.StreamReader, max_size: int) -> tuple[bytes, bytes]:
    """Read one frame; return (header, body). FrameTooLarge or ConnectionClosed on failure."""
    try:
        header = await reader.readexactly(FRAME_HEADER_LEN)
        length = frame_length(header, max_size)
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as err:
        raise ConnectionClosed("stream ended inside a frame" if err.partial else "eof") from err
    except ConnectionError as err:
        raise ConnectionClosed(str(err) or type(err).__name__) from err
    return header, body
