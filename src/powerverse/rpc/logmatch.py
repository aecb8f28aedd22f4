"""Ethereum log filter semantics (eth_getLogs, eth_newFilter, "logs" subscriptions), as geth.

Logs are the formatted JSON objects the node returns: dicts of 0x-hex strings with keys
address, topics, data, blockNumber, blockHash, transactionHash, transactionIndex, logIndex,
removed. Hex comparison is case-insensitive (everything is lower-cased once, at parse time).

Topic rules follow geth: position i of the filter constrains topic i of the log; null (or an
empty list, or a list containing null) is a wildcard; a list is an OR; a log with fewer topics
than the filter has positions never matches, even when the trailing positions are null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from eth_bloom.bloom import BloomFilter

from powerverse.rpc.errors import InvalidParams

__all__ = [
    "BLOCK_TAGS",
    "MAX_ADDRESSES",
    "MAX_TOPICS",
    "MAX_TOPIC_ALTERNATIVES",
    "BlockRef",
    "BlockTag",
    "LogCriteria",
    "bloom_may_contain",
    "filter_logs",
    "matches",
    "parse_block_ref",
    "parse_filter_criteria",
]

BlockTag = Literal["earliest", "latest", "pending", "safe", "finalized"]
BlockRef = int | BlockTag
BLOCK_TAGS: frozenset[str] = frozenset({"earliest", "latest", "pending", "safe", "finalized"})
MAX_TOPICS = 4
MAX_ADDRESSES = 1000
MAX_TOPIC_ALTERNATIVES = 1000
_MAX_UINT64 = 2**64 - 1

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH_RE = re.compile(r"0x[0-9a-fA-F]{64}")
_QUANTITY_RE = re.compile(r"0x[0-9a-fA-F]{1,16}")


@dataclass(frozen=True)
class LogCriteria:
    """A parsed log filter; hex values are lower-case, empty addresses/topics mean "any"."""

    from_block: BlockRef | None = None
    to_block: BlockRef | None = None
    block_hash: str | None = None
    addresses: tuple[str, ...] = ()
    topics: tuple[tuple[str, ...] | None, ...] = ()


def parse_filter_criteria(obj: Any) -> LogCriteria:
    """Validate a JSON filter object (null means match everything); bad input is InvalidParams."""
    if obj is None:
        return LogCriteria()
    if not isinstance(obj, Mapping):
        raise InvalidParams("invalid filter: expected an object")
    block_hash = obj.get("blockHash")
    from_raw, to_raw = obj.get("fromBlock"), obj.get("toBlock")
    if block_hash is not None:
        if from_raw is not None or to_raw is not None:
            raise InvalidParams(
                "cannot specify both blockHash and fromBlock/toBlock, choose one or the other"
            )
        block_hash = _parse_hex(block_hash, _HASH_RE, "blockHash", "a 32-byte hash")
    from_block = parse_block_ref(from_raw, "fromBlock") if from_raw is not None else None
    to_block = parse_block_ref(to_raw, "toBlock") if to_raw is not None else None
    if isinstance(from_block, int) and isinstance(to_block, int) and from_block > to_block:
        raise InvalidParams(f"invalid block range: fromBlock {from_block} > toBlock {to_block}")
    return LogCriteria(
        from_block=from_block,
        to_block=to_block,
        block_hash=block_hash,
        addresses=_parse_addresses(obj.get("address")),
        topics=_parse_topics(obj.get("topics")),
    )


def parse_block_ref(value: Any, field: str = "block") -> BlockRef:
    """Parse a block tag ("latest", ...) or a 0x-hex (or non-negative integer) block number."""
    if isinstance(value, str):
        if value in BLOCK_TAGS:
            return value  # type: ignore[return-value]
        if _QUANTITY_RE.fullmatch(value):
            return int(value, 16)
    elif type(value) is int and 0 <= value <= _MAX_UINT64:
        return value
    raise InvalidParams(
        f"invalid {field}: expected a block tag ({', '.join(sorted(BLOCK_TAGS))}) "
        f"or a 0x-prefixed hex block number, got {_show(value)}"
    )


def matches(log: Mapping[str, Any], criteria: LogCriteria) -> bool:
    """True when the log satisfies block hash/number bounds, address and topic rules."""
    if criteria.block_hash is not None and str(log.get("blockHash", "")).lower() != (
        criteria.block_hash
    ):
        return False
    if not _in_block_range(log.get("blockNumber"), criteria):
        return False
    if criteria.addresses and str(log.get("address", "")).lower() not in criteria.addresses:
        return False
    if not criteria.topics:
        return True
    log_topics = log.get("topics") or ()
    if len(criteria.topics) > len(log_topics):
        return False
    for wanted, actual in zip(criteria.topics, log_topics, strict=False):
        if wanted is not None and str(actual).lower() not in wanted:
            return False
    return True


def filter_logs(logs: Iterable[Mapping[str, Any]], criteria: LogCriteria) -> list[Any]:
    """The logs that match, in their original order."""
    return [log for log in logs if matches(log, criteria)]


def bloom_may_contain(bloom: bytes, criteria: LogCriteria) -> bool:
    """False only when a block's 256-byte logs bloom proves no log in it can match."""
    bloom_filter = BloomFilter(int.from_bytes(bloom, "big"))
    if criteria.addresses and not any(
        bytes.fromhex(address[2:]) in bloom_filter for address in criteria.addresses
    ):
        return False
    for wanted in criteria.topics:
        if wanted is not None and not any(
            bytes.fromhex(topic[2:]) in bloom_filter for topic in wanted
        ):
            return False
    return True


def _in_block_range(block_number: Any, criteria: LogCriteria) -> bool:
    """Numeric fromBlock/toBlock bounds; tags are resolved by the caller, so they pass here."""
    low = criteria.from_block if isinstance(criteria.from_block, int) else None
    high = criteria.to_block if isinstance(criteria.to_block, int) else None
    if (low is None and high is None) or not isinstance(block_number, str):
        return True
    try:
        number = int(block_number, 16)
    except ValueError:
        return True
    return (low is None or number >= low) and (high is None or number <= high)


def _parse_addresses(value: Any) -> tuple[str, ...]:
    """A single address or a list of them; null or [] means any address."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_ADDRESSES:
        raise InvalidParams(f"invalid address: more than {MAX_ADDRESSES} addresses")
    return tuple(
        dict.fromkeys(
            _parse_hex(item, _ADDRESS_RE, "address", "a 20-byte address") for item in items
        )
    )


def _parse_topics(value: Any) -> tuple[tuple[str, ...] | None, ...]:
    """Up to four positions, each null, a topic, or a list of topics (OR)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParams("invalid topics: expected an array")
    if len(value) > MAX_TOPICS:
        raise InvalidParams(f"exceed max topics: at most {MAX_TOPICS} topic positions")
    return tuple(_parse_topic_position(item, i) for i, item in enumerate(value))


def _parse_topic_position(value: Any, index: int) -> tuple[str, ...] | None:
    """One topic position; None is the wildcard."""
    field = f"topics[{index}]"
    if value is None:
        return None
    if isinstance(value, str):
        return (_parse_hex(value, _HASH_RE, field, "a 32-byte topic"),)
    if not isinstance(value, list):
        raise InvalidParams(f"invalid {field}: expected null, a topic or an array of topics")
    if len(value) > MAX_TOPIC_ALTERNATIVES:
        raise InvalidParams(f"invalid {field}: more than {MAX_TOPIC_ALTERNATIVES} alternatives")
    topics = [
        _parse_hex(item, _HASH_RE, field, "a 32-byte topic") for item in value if item is not None
    ]
    if not topics or len(topics) < len(value):
        return None  # an empty list or a null alternative matches any topic
    return tuple(dict.fromkeys(topics))


def _parse_hex(value: Any, pattern: re.Pattern[str], field: str, what: str) -> str:
    """Check a fixed-length 0x-hex string and lower-case it."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidParams(
            f"invalid {field}: expected {what} as 0x-prefixed hex, got {_show(value)}"
        )
    return value.lower()


def _show(value: Any) -> str:
    """A short rendering of bad input for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
