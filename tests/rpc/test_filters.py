"""Log filter semantics (logmatch) and polling filters (FilterManager) on a fake clock."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from eth_bloom.bloom import BloomFilter

from powerverse.rpc.errors import FilterNotFound, InvalidParams, LimitExceeded
from powerverse.rpc.filters import FilterInfo, FilterManager
from powerverse.rpc.logmatch import (
    LogCriteria,
    bloom_may_contain,
    filter_logs,
    matches,
    parse_block_ref,
    parse_filter_criteria,
)
from powerverse.rpc.server import CallContext

ADDR_A = "0x" + "aa" * 20
ADDR_B = "0x" + "bb" * 20
ADDR_A_MIXED = "0x" + "aA" * 20
T1 = "0x" + "11" * 32
T2 = "0x" + "22" * 32
T3 = "0x" + "33" * 32
HASH_1 = "0x" + "01" * 32
HASH_2 = "0x" + "02" * 32
ID_RE = re.compile(r"0x[0-9a-f]{32}")
HTTP = CallContext("http")


def make_log(
    address: str = ADDR_A,
    topics: tuple[str, ...] = (T1,),
    block: int = 5,
    block_hash: str = HASH_1,
    index: int = 0,
) -> dict[str, Any]:
    return {
        "address": address,
        "topics": list(topics),
        "data": "0x",
        "blockNumber": hex(block),
        "blockHash": block_hash,
        "transactionHash": "0x" + "ee" * 32,
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "removed": False,
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ parse_filter_criteria


def test_empty_or_null_criteria_match_everything() -> None:
    assert parse_filter_criteria(None) == LogCriteria()
    assert parse_filter_criteria({}) == LogCriteria()
    assert matches(make_log(), LogCriteria())


def test_criteria_are_normalised_to_lowercase() -> None:
    crit = parse_filter_criteria(
        {
            "fromBlock": "0x1",
            "toBlock": "latest",
            "address": ADDR_A_MIXED,
            "topics": [T1.upper().replace("0X", "0x"), None, [T2, T3]],
        }
    )
    assert crit.from_block == 1 and crit.to_block == "latest"
    assert crit.addresses == (ADDR_A,)
    assert crit.topics == ((T1,), None, (T2, T3))
    assert parse_filter_criteria({"address": [ADDR_A, ADDR_B, ADDR_A]}).addresses == (
        ADDR_A,
        ADDR_B,
    )


def test_empty_list_or_null_alternative_is_a_wildcard() -> None:
    assert parse_filter_criteria({"topics": [[], [T1, None]]}).topics == (None, None)
    assert parse_filter_criteria({"topics": None, "address": []}) == LogCriteria()


def test_block_hash_criteria() -> None:
    crit = parse_filter_criteria({"blockHash": HASH_1.upper().replace("0X", "0x")})
    assert crit.block_hash == HASH_1
    assert matches(make_log(block_hash=HASH_1), crit)
    assert not matches(make_log(block_hash=HASH_2), crit)


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ("latest", "expected an object"),
        ([ADDR_A], "expected an object"),
        ({"address": "0x1234"}, "address"),
        ({"address": ADDR_A[:-1] + "g"}, "address"),
        ({"address": 5}, "address"),
        ({"address": [ADDR_A, None]}, "address"),
        ({"topics": "0x" + "11" * 32}, "topics"),
        ({"topics": [T1, T1, T1, T1, T1]}, "exceed max topics"),
        ({"topics": ["0x11"]}, "topics[0]"),
        ({"topics": [None, [T1, "nothex"]]}, "topics[1]"),
        ({"topics": [5]}, "topics[0]"),
        ({"fromBlock": "0x"}, "fromBlock"),
        ({"toBlock": "0xzz"}, "toBlock"),
        ({"fromBlock": "newest"}, "fromBlock"),
        ({"fromBlock": -1}, "fromBlock"),
        ({"fromBlock": True}, "fromBlock"),
        ({"fromBlock": "0x" + "f" * 17}, "fromBlock"),
        ({"fromBlock": "0x5", "toBlock": "0x4"}, "invalid block range"),
        ({"blockHash": HASH_1, "fromBlock": "0x1"}, "cannot specify both"),
        ({"blockHash": "0x1234"}, "blockHash"),
    ],
)
def test_bad_criteria_raise_invalid_params(obj: Any, fragment: str) -> None:
    with pytest.raises(InvalidParams) as info:
        parse_filter_criteria(obj)
    assert info.value.code == -32602
    assert fragment in info.value.message


def test_block_refs() -> None:
    assert parse_block_ref("earliest") == "earliest"
    assert parse_block_ref("0x0") == 0
    assert parse_block_ref("0x00ff") == 255
    assert parse_block_ref(12) == 12
    with pytest.raises(InvalidParams, match="block"):
        parse_block_ref(None)


def test_too_many_addresses_or_alternatives_are_rejected() -> None:
    with pytest.raises(InvalidParams, match="more than"):
        parse_filter_criteria({"address": [ADDR_A] * 1001})
    with pytest.raises(InvalidParams, match="more than"):
        parse_filter_criteria({"topics": [[T1] * 1001]})


# ------------------------------------------------------------------ matches


def test_address_match_is_case_insensitive_and_or() -> None:
    crit = parse_filter_criteria({"address": [ADDR_A_MIXED, ADDR_B]})
    assert matches(make_log(address=ADDR_A.upper().replace("0X", "0x")), crit)
    assert matches(make_log(address=ADDR_B), crit)
    assert not matches(make_log(address="0x" + "cc" * 20), crit)


def test_topics_are_positional_with_wildcards_and_alternatives() -> None:
    log = make_log(topics=(T1, T2, T3))
    assert matches(log, parse_filter_criteria({"topics": [T1]}))
    assert matches(log, parse_filter_criteria({"topics": [None, T2]}))
    assert matches(log, parse_filter_criteria({"topics": [[T3, T1], None, [T3]]}))
    assert not matches(log, parse_filter_criteria({"topics": [T2]}))
    assert not matches(log, parse_filter_criteria({"topics": [T1, T3]}))
    assert matches(log, parse_filter_criteria({"topics": [T1.upper().replace("0X", "0x")]}))


def test_filter_longer_than_log_topics_never_matches() -> None:
    log = make_log(topics=(T1,))
    assert not matches(log, parse_filter_criteria({"topics": [T1, None]}))
    assert not matches(make_log(topics=()), parse_filter_criteria({"topics": [None]}))
    assert matches(make_log(topics=()), parse_filter_criteria({"topics": []}))


def test_numeric_block_bounds_apply_and_tags_do_not() -> None:
    crit = parse_filter_criteria({"fromBlock": "0x5", "toBlock": "0x6"})
    assert [matches(make_log(block=n), crit) for n in (4, 5, 6, 7)] == [False, True, True, False]
    tagged = parse_filter_criteria({"fromBlock": "latest", "toBlock": "pending"})
    assert matches(make_log(block=1), tagged)
    open_ended = parse_filter_criteria({"fromBlock": "0x10"})
    assert not matches(make_log(block=15), open_ended)
    assert matches(make_log(block=16), open_ended)


def test_filter_logs_keeps_order() -> None:
    logs = [make_log(index=i, address=ADDR_A if i % 2 else ADDR_B) for i in range(6)]
    kept = filter_logs(logs, parse_filter_criteria({"address": ADDR_A}))
    assert [entry["logIndex"] for entry in kept] == ["0x1", "0x3", "0x5"]


# ------------------------------------------------------------------ bloom


def test_bloom_prefilter() -> None:
    bloom = BloomFilter()
    bloom.add(bytes.fromhex(ADDR_A[2:]))
    bloom.add(bytes.fromhex(T1[2:]))
    raw = int(bloom).to_bytes(256, "big")
    assert bloom_may_contain(raw, LogCriteria())
    assert bloom_may_contain(raw, parse_filter_criteria({"address": ADDR_A, "topics": [T1]}))
    assert bloom_may_contain(raw, parse_filter_criteria({"address": [ADDR_B, ADDR_A]}))
    assert bloom_may_contain(raw, parse_filter_criteria({"topics": [None, None]}))
    assert not bloom_may_contain(raw, parse_filter_criteria({"address": ADDR_B}))
    assert not bloom_may_contain(raw, parse_filter_criteria({"topics": [[T2, T3]]}))
    assert not bloom_may_contain(bytes(256), parse_filter_criteria({"address": ADDR_A}))


# ------------------------------------------------------------------ FilterManager


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fm(clock: FakeClock) -> FilterManager:
    return FilterManager(clock)


def test_block_filter_returns_hashes_since_last_poll(fm: FilterManager) -> None:
    fid = fm.new_block_filter()
    assert ID_RE.fullmatch(fid)
    assert fm.get_changes(fid) == []
    fm.on_new_block(HASH_1, [make_log()])
    fm.on_new_block(HASH_2, [])
    assert fm.get_changes(fid) == [HASH_1, HASH_2]
    assert fm.get_changes(fid) == []


def test_log_filter_collects_only_matching_logs(fm: FilterManager) -> None:
    fid = fm.new_log_filter(parse_filter_criteria({"address": ADDR_A, "topics": [T1]}))
    wanted = make_log(index=0)
    fm.on_new_block(HASH_1, [wanted, make_log(address=ADDR_B, index=1), make_log(topics=(T2,))])
    fm.on_pending_tx("0x" + "99" * 32)
    assert fm.get_changes(fid) == [wanted]


def test_pending_filter_collects_tx_hashes_only(fm: FilterManager) -> None:
    fid = fm.new_pending_tx_filter()
    fm.on_new_block(HASH_1, [make_log()])
    fm.on_pending_tx("0xabc")
    fm.on_pending_tx("0xdef")
    assert fm.get_changes(fid) == ["0xabc", "0xdef"]


def test_filters_expire_after_timeout_without_polling(clock: FakeClock, fm: FilterManager) -> None:
    polled = fm.new_block_filter()
    idle = fm.new_block_filter()
    clock.now += 299
    fm.get_changes(polled)
    clock.now += 299
    assert fm.get_changes(polled) == []
    with pytest.raises(FilterNotFound) as info:
        fm.get_changes(idle)
    assert info.value.to_json() == {"code": -32000, "message": "filter not found"}
    clock.now += 300
    with pytest.raises(FilterNotFound):
        fm.get_filter(polled)
    assert len(fm) == 0


def test_get_filter_describes_the_filter_and_keeps_it_alive(
    clock: FakeClock, fm: FilterManager
) -> None:
    crit = parse_filter_criteria({"address": ADDR_A})
    log_id = fm.new_log_filter(crit)
    block_id = fm.new_block_filter()
    assert fm.get_filter(log_id) == FilterInfo(log_id, "logs", crit)
    assert fm.get_filter(block_id).kind == "blocks" and fm.get_filter(block_id).criteria is None
    clock.now += 200
    fm.get_filter(log_id)
    clock.now += 200
    assert fm.get_filter(log_id).criteria == crit


def test_uninstall(fm: FilterManager) -> None:
    fid = fm.new_block_filter()
    assert fm.uninstall(fid)
    assert not fm.uninstall(fid)
    with pytest.raises(FilterNotFound):
        fm.get_changes(fid)
    assert not fm.uninstall("0xnotafilter")


def test_ids_are_unique_random_and_case_insensitive(fm: FilterManager) -> None:
    ids = {fm.new_block_filter() for _ in range(50)}
    assert len(ids) == 50 and all(ID_RE.fullmatch(i) for i in ids)
    some = next(iter(ids))
    fm.on_new_block(HASH_1, [])
    assert fm.get_changes(some.upper().replace("0X", "0x")) == [HASH_1]


def test_injected_randomness_gives_deterministic_ids(clock: FakeClock) -> None:
    fm = FilterManager(clock, random_bytes=lambda n: b"\x07" * n)
    assert fm.new_block_filter() == "0x" + "07" * 16


def test_buffers_are_bounded_and_drop_oldest(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fm = FilterManager(clock, max_buffer=3)
    fid = fm.new_pending_tx_filter()
    with caplog.at_level(logging.WARNING, logger="powerverse.rpc.filters"):
        for n in range(5):
            fm.on_pending_tx(hex(n))
    assert fm.get_changes(fid) == ["0x2", "0x3", "0x4"]
    assert sum("buffer full" in r.getMessage() for r in caplog.records) == 1


def test_filter_count_is_limited(clock: FakeClock) -> None:
    fm = FilterManager(clock, max_filters=2)
    fm.new_block_filter()
    fm.new_block_filter()
    with pytest.raises(LimitExceeded):
        fm.new_block_filter()
    clock.now += 301
    fm.new_block_filter()
    assert len(fm) == 1


def test_prune_reports_removed_count(clock: FakeClock, fm: FilterManager) -> None:
    fm.new_block_filter()
    fm.new_pending_tx_filter()
    assert fm.prune() == 0
    clock.now += 300
    assert fm.prune() == 2


# ------------------------------------------------------------------ FilterManager JSON-RPC handlers


async def test_rpc_handlers_round_trip(fm: FilterManager) -> None:
    rpc = fm.rpc_methods()
    log_id = await rpc["eth_newFilter"]([{"address": ADDR_A}], HTTP)
    block_id = await rpc["eth_newBlockFilter"]([], HTTP)
    pending_id = await rpc["eth_newPendingTransactionFilter"]([False], HTTP)
    fm.on_new_block(HASH_1, [make_log()])
    fm.on_pending_tx("0x01")
    assert await rpc["eth_getFilterChanges"]([log_id], HTTP) == [make_log()]
    assert await rpc["eth_getFilterChanges"]([block_id], HTTP) == [HASH_1]
    assert await rpc["eth_getFilterChanges"]([pending_id], HTTP) == ["0x01"]
    assert await rpc["eth_uninstallFilter"]([block_id], HTTP) is True
    assert await rpc["eth_uninstallFilter"]([block_id], HTTP) is False


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_newFilter", []),
        ("eth_newFilter", [{"address": "0x12"}]),
        ("eth_newFilter", {"address": ADDR_A}),
        ("eth_newBlockFilter", [1]),
        ("eth_newPendingTransactionFilter", [True]),
        ("eth_getFilterChanges", [5]),
        ("eth_getFilterChanges", []),
        ("eth_uninstallFilter", [None]),
    ],
)
async def test_rpc_handlers_reject_bad_params(fm: FilterManager, method: str, params: Any) -> None:
    with pytest.raises(InvalidParams):
        await fm.rpc_methods()[method](params, HTTP)


async def test_rpc_get_changes_unknown_id_is_filter_not_found(fm: FilterManager) -> None:
    with pytest.raises(FilterNotFound):
        await fm.rpc_methods()["eth_getFilterChanges"](["0x" + "00" * 16], HTTP)
