"""Unit tests of bench/devnet.py's helpers that need no node: figures, commands, scan, report."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from bench._procs import cpu_seconds, tree_cpu_seconds
from bench.devnet import (
    BlockWatcher,
    FinalityResult,
    PhaseReport,
    SeenBlock,
    leftover_processes,
    parse_args,
    render_table,
    summarize,
    targets,
    to_json,
    validator_commands,
)
from bench.exceptions import LoadError
from rich.console import Console

from powerverse.p2p.address import PeerAddress


def _result(tps_seconds: float, p50: float) -> FinalityResult:
    return FinalityResult(
        count=100,
        included=100,
        failed=0,
        seconds=tps_seconds,
        send_seconds=0.5,
        blocks=3,
        window_blocks=4,
        empty_blocks=1,
        p50_s=p50,
        p99_s=p50 * 2,
        mean_s=p50,
        max_s=p50 * 3,
    )


def test_summarize_times_each_tx_to_the_first_block_holding_it() -> None:
    sends = {"0xaa": 10.0, "0xbb": 10.0, "0xcc": 10.5}
    blocks = [
        SeenBlock(5, 9.0, ("0xaa",)),  # at head_before: not part of the load
        SeenBlock(6, 10.2, ("0xAA",)),  # upper-case hash matches; first holder wins
        SeenBlock(7, 10.4, ()),
        SeenBlock(8, 11.0, ("0xbb", "0xcc", "0xother")),
        SeenBlock(9, 12.0, ("0xaa",)),  # a later duplicate is ignored
    ]
    result = summarize(sends, 0.5, blocks, head_before=5, failed=1)
    assert result.count == 3 and result.included == 2 and result.failed == 1
    assert result.blocks == 2  # blocks 6 and 8
    assert result.window_blocks == 3 and result.empty_blocks == 1  # 6, 7, 8; 7 empty
    assert result.seconds == pytest.approx(1.0)  # first send 10.0 → block 8 at 11.0
    assert result.p50_s == pytest.approx(0.5)  # latencies 0.2, 0.5, 1.0
    assert result.p99_s == pytest.approx(1.0) and result.max_s == pytest.approx(1.0)
    assert result.mean_s == pytest.approx((0.2 + 0.5 + 1.0) / 3)
    assert result.tps == pytest.approx(2.0) and result.send_tps == pytest.approx(6.0)


def test_summarize_refuses_a_tx_in_no_block_and_an_empty_load() -> None:
    with pytest.raises(LoadError, match="1 of 2 txs are in no block seen"):
        summarize({"0xaa": 1.0, "0xbb": 1.0}, 0.1, [SeenBlock(1, 2.0, ("0xaa",))], 0)
    with pytest.raises(LoadError):
        summarize({"0xaa": 1.0}, 0.1, [], 0)
    with pytest.raises(ValueError, match="no transactions"):
        summarize({}, 0.1, [SeenBlock(1, 2.0, ())], 0)


def test_rates_are_zero_for_a_zero_duration() -> None:
    r = FinalityResult(1, 1, 0, 0.0, 0.0, 1, 1, 0, 0.0, 0.0, 0.0, 0.0)
    assert r.tps == 0.0 and r.send_tps == 0.0
    assert json.loads(json.dumps(r.to_json()))["tps"] == 0.0


def test_validator_commands_name_every_other_node_as_bootnode() -> None:
    peers = [bytes([i]) * 32 for i in range(1, 5)]
    cmds = validator_commands(Path("/x/pv"), Path("/d"), peers, [1, 2, 3, 4], [11, 12, 13, 14])
    assert len(cmds) == 4
    for i, cmd in enumerate(cmds):
        assert cmd[:2] == ["/x/pv", "node"]
        opts = dict(zip(cmd[2::2], cmd[3::2], strict=False))
        assert opts["--data-dir"] == f"/d/node-{i}" and opts["--rpc-port"] == str(i + 1)
        assert opts["--p2p-port"] == str(11 + i) and opts["--txpool-account-slots"] == "4096"
        boots = [b for k, b in itertools.pairwise(cmd) if k == "--bootnode"]
        parsed = [PeerAddress.parse(b) for b in boots]
        assert sorted(p.port for p in parsed) == sorted({11, 12, 13, 14} - {11 + i})
    with pytest.raises(ValueError, match="one peer id"):
        validator_commands(Path("pv"), Path("/d"), peers, [1, 2], [3, 4, 5, 6])


def _proc(root: Path, pid: str, stat: str | None, cmdline: bytes = b"") -> None:
    d = root / pid
    d.mkdir()
    if stat is not None:
        (d / "stat").write_text(stat)
        (d / "cmdline").write_bytes(cmdline)


def test_leftover_scan_finds_our_sessions_and_markers_only(tmp_path: Path) -> None:
    _proc(tmp_path, "100", "100 (pv) S 1 100 100 0", b"pv\0node")  # node: own session
    _proc(tmp_path, "101", "101 (py (x)) S 100 100 100 0", b"python\0-c")  # its executor
    _proc(tmp_path, "102", "102 (pv) S 1 102 102 0", b"pv\0--data-dir\0/tmp/mark-1/node-0")
    _proc(tmp_path, "103", "103 (bash) S 1 103 103 0", b"bash")  # unrelated
    _proc(tmp_path, "104", "104 (pv) Z 1 100 100 0", b"")  # a zombie of ours: gone already
    _proc(tmp_path, "105", None)  # vanished while scanning
    _proc(tmp_path, "106", "garbage")  # malformed stat
    (tmp_path / "self").mkdir()
    assert leftover_processes({100}, ["/tmp/mark-1"], tmp_path) == [100, 101, 102]
    assert leftover_processes(set(), [""], tmp_path) == []


def test_targets_and_table_show_both_phases_side_by_side() -> None:
    single = PhaseReport("single", 1, result=_result(1.0, 0.1), height_end=10)
    devnet = PhaseReport("devnet", 4, result=_result(2.0, 1.2), height_end=50)
    goals = targets(single, devnet)
    assert goals["tps_ratio"]["value"] == pytest.approx(0.5) and goals["tps_ratio"]["met"] is False
    assert goals["devnet_p50_s"]["met"] is True
    console = Console(width=200, record=True)
    console.print(render_table(single, devnet))
    text = console.export_text()
    assert "100.0 tx/s" in text and "50.0 tx/s" in text and "0.50×" in text
    assert "missed" in text and "met" in text and "devnet (4 validators)" in text
    doc = to_json(single, devnet, {"count": 100}, "bench/devnet.py")
    assert json.loads(json.dumps(doc))["devnet"]["transfers"]["p50_s"] == pytest.approx(1.2)


def test_node_cpu_per_tx_and_cores_busy_show_beside_each_other() -> None:
    single = PhaseReport("single", 1, result=replace(_result(1.0, 0.1), node_cpu_s=0.09))
    devnet = PhaseReport("devnet", 4, result=replace(_result(2.0, 1.2), node_cpu_s=3.6))
    assert single.result is not None and devnet.result is not None
    assert single.result.cpu_us_per_tx == pytest.approx(900.0)  # 0.09 s over 100 txs
    assert devnet.result.cpu_us_per_tx == pytest.approx(36_000.0)
    assert devnet.result.cores_busy == pytest.approx(1.8)  # 3.6 CPU s in 2 s
    console = Console(width=200, record=True)
    console.print(render_table(single, devnet))
    text = console.export_text()
    assert "900 µs" in text and "36,000 µs" in text and "40.00×" in text and "1.80" in text
    doc = json.loads(json.dumps(to_json(single, devnet, {}, "x")))
    assert doc["devnet"]["transfers"]["cpu_us_per_tx"] == pytest.approx(36_000.0)
    unmeasured = _result(1.0, 0.1)
    assert unmeasured.cpu_us_per_tx is None and unmeasured.cores_busy is None


def test_tree_cpu_seconds_counts_a_busy_child(tmp_path: Path) -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    script = tmp_path / "burn.py"
    script.write_text(burn + "time.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", (
        f"import subprocess, sys; subprocess.run([sys.executable, {str(script)!r}])"
    )])  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_seconds([parent.pid]) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree_cpu_seconds([parent.pid]) >= 0.3  # the grandchild's CPU counts
        assert cpu_seconds(parent.pid) is not None
        assert cpu_seconds(parent.pid) < 0.3  # the parent itself only waits
    finally:
        children = psutil.Process(parent.pid).children(recursive=True)
        parent.kill()
        parent.wait()
        for child in children:
            child.kill()
    assert cpu_seconds(parent.pid) is None  # gone (reaped)


def test_a_failed_phase_leaves_its_figures_and_the_targets_empty() -> None:
    single = PhaseReport("single", 1, error="node exited")
    devnet = PhaseReport("devnet", 4, result=_result(2.0, 2.0))
    goals = targets(single, devnet)
    assert goals["tps_ratio"] == {"value": None, "target": 0.7, "met": None}
    assert goals["devnet_p50_s"]["met"] is False
    console = Console(width=200, record=True)
    console.print(render_table(single, devnet))
    assert "missed" in console.export_text()
    assert to_json(single, devnet, {}, "x")["single"]["error"] == "node exited"


@pytest.mark.parametrize(
    "argv",
    [
        ["--validators", "0"],
        ["--validators", "17"],
        ["--count", "0"],
        ["--poll", "-1"],
        ["--timeout", "0"],
        ["--count", "many"],
    ],
)
def test_bad_command_lines_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2


def test_default_command_line() -> None:
    args = parse_args([])
    assert (args.validators, args.count, args.json) == (4, 2000, False)


def _chain_node(blocks: dict[int, list[str]], step: int) -> Any:
    """A fake node whose head moves `step` blocks on every eth_blockNumber, up to the last."""
    state = {"head": 0}
    top = max(blocks)

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if isinstance(body, list):
            replies = []
            for r in body:
                n = int(r["params"][0], 16)
                block = {"number": hex(n), "transactions": blocks[n]} if n in blocks else None
                replies.append({"jsonrpc": "2.0", "id": r["id"], "result": block})
            return httpx.Response(200, json=replies)
        assert body["method"] == "eth_blockNumber"
        head = state["head"]
        state["head"] = min(top, head + step)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": hex(head)})

    return handler


def _wait(done: Any) -> None:
    deadline = time.monotonic() + 30
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_watcher_fetches_every_new_block_and_stamps_a_jump_once() -> None:
    blocks = {n: [f"0x{n:02X}"] if n % 2 else [] for n in range(0, 9)}
    transport = httpx.MockTransport(_chain_node(blocks, step=2))
    watcher = BlockWatcher("http://node.test", 0.001, transport=transport)
    with watcher:
        _wait(lambda: watcher.count_seen(["0x07"]) == 1)
    assert watcher.head_before == 0 and watcher.error is None
    seen = watcher.blocks()
    assert [b.number for b in seen] == list(range(1, 9))
    assert seen[2].tx_hashes == ("0x03",) and seen[1].tx_hashes == ()
    assert seen[0].seen_at == seen[1].seen_at  # one poll saw the head jump from 0 to 2
    assert watcher.count_seen(["0x01", "0x05", "0x02"]) == 2


def test_watcher_gives_up_on_a_node_that_keeps_failing() -> None:
    blocks = {0: [], 1: [], 3: []}  # block 2 is missing below the head
    transport = httpx.MockTransport(_chain_node(blocks, step=3))
    watcher = BlockWatcher("http://node.test", 0.001, max_failures=3, transport=transport)
    with watcher:
        _wait(lambda: watcher.error is not None)
    assert watcher.error is not None and "no block 2" in str(watcher.error)
    assert watcher.blocks() == []
