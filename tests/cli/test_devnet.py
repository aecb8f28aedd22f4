"""`pv devnet`: layout, argument errors, pid bookkeeping, and process management.

Process tests run a tiny fake node (PV_DEVNET_NODE_CMD) that serves eth_blockNumber on
--rpc-port; the real multi-validator run is `test_real_devnet_agrees`.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from powerverse.chain.genesis import DEFAULT_STAKE, ConsensusParams, parse_genesis
from powerverse.cli import devnet as dn
from powerverse.cli.app import _register_subcommands, app
from powerverse.contracts.system import (
    DIVIDEND_POOL,
    SYSTEM_CONTRACTS,
    TOKENOMICS_ADDRESSES,
    dev_tokenomics,
)
from powerverse.crypto.keys import dev_accounts
from powerverse.node.validator_key import ValidatorKey
from tests.e2e.nodeproc import PV_BIN, rpc

_register_subcommands()
runner = CliRunner()

FAKE_NODE = r"""
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]


def opt(name):
    return args[args.index(name) + 1]


data_dir = opt("--data-dir")
os.makedirs(data_dir, exist_ok=True)
with open(os.path.join(data_dir, "argv.json"), "w") as handle:
    json.dump(args, handle)
if os.environ.get("FAKE_NODE_FAIL"):
    print("fake node: cannot open the chain [boom]", flush=True)
    sys.exit(1)
peers = args.count("--bootnode")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = {"jsonrpc": "2.0", "id": request["id"]}
        method = request["method"]
        if method == "eth_blockNumber":
            reply["result"] = "0x7"
        elif method == "pv_consensusStatus" and not os.environ.get("FAKE_NODE_NO_CONSENSUS"):
            reply["result"] = {"height": 8, "round": 1, "step": "soft", "peers": peers,
                               "lastCertificate": None}
        else:
            reply["error"] = {"code": -32601, "message": "method not found"}
        body = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(opt("--rpc-port"))), Handler)
if os.environ.get("FAKE_NODE_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("fake node listening", flush=True)
server.serve_forever()
"""


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_range(count: int, avoid: range = range(0)) -> int:
    """A base port with `count` free consecutive loopback ports after it."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        ports = range(base, base + count)
        if not set(ports) & set(avoid) and all(_free(p) for p in ports):
            return base
    raise AssertionError("no free port range")


def ports(count: int) -> list[str]:
    """--base-port and --p2p-base-port options with free, disjoint ranges."""
    rpc_base = free_range(count)
    p2p_base = free_range(count, range(rpc_base, rpc_base + count))
    return ["--base-port", str(rpc_base), "--p2p-base-port", str(p2p_base)]


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["devnet", *args])


def state(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((directory / "devnet.json").read_text())
    return doc


def status_nodes(directory: Path) -> list[dict[str, Any]]:
    result = invoke("status", "--dir", str(directory), "--json")
    assert result.exit_code == 0, result.output
    nodes: list[dict[str, Any]] = json.loads(result.stdout)["nodes"]
    return nodes


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def planned(directory: Path, count: int, rpc_base: int = 41000, p2p_base: int = 42000) -> dn.Devnet:
    keys = [ValidatorKey.from_label(dn.validator_label(i)) for i in range(count)]
    return dn.plan_devnet(
        directory, [k.consensus.public_key for k in keys], rpc_base, p2p_base, ("pv", "node")
    )


def write_devnet(directory: Path, pids: list[int | None]) -> dn.Devnet:
    """A devnet.json (no processes started) whose nodes carry the given pids."""
    directory.mkdir(parents=True, exist_ok=True)
    devnet = planned(directory, len(pids))
    for record, pid in zip(devnet.nodes, pids, strict=True):
        devnet = devnet.with_node(replace(record, pid=pid))
    devnet.save()
    return devnet


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", ["0", "17", "-1"])
def test_validator_count_out_of_range_is_a_usage_error(tmp_path: Path, count: str) -> None:
    result = invoke("up", "--validators", count, "--dir", str(tmp_path / "net"))
    assert result.exit_code == 2
    assert "between 1 and 16" in result.output
    assert not (tmp_path / "net").exists()


@pytest.mark.parametrize(
    "options",
    [
        ["--base-port", "65534"],  # 4 nodes need 65534..65537
        ["--base-port", "0"],
        ["--base-port", "30000", "--p2p-base-port", "30002"],  # ranges overlap
    ],
)
def test_bad_port_ranges_are_usage_errors(tmp_path: Path, options: list[str]) -> None:
    result = invoke("up", "-n", "4", "--dir", str(tmp_path / "net"), *options)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "net").exists()


@pytest.mark.parametrize(
    "command", [["status"], ["status", "--json"], ["stop", "0"], ["start", "0"], ["down"]]
)
def test_commands_fail_where_there_is_no_devnet(tmp_path: Path, command: list[str]) -> None:
    result = invoke(*command, "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "no devnet" in result.output


def test_malformed_devnet_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "devnet.json").write_text('{"version": 1, "nodes": "many"}')
    result = invoke("status", "--dir", str(tmp_path))
    assert result.exit_code == 1 and "malformed" in result.output
    (tmp_path / "devnet.json").write_text("not json")
    assert invoke("status", "--dir", str(tmp_path)).exit_code == 1


@pytest.mark.parametrize("command", ["stop", "start"])
@pytest.mark.parametrize("index", ["2", "16", "-1"])
def test_unknown_node_index_is_a_usage_error(tmp_path: Path, command: str, index: str) -> None:
    write_devnet(tmp_path, [None, None])
    result = invoke(command, "--dir", str(tmp_path), "--", index)
    assert result.exit_code == 2, result.output
    assert "0..1" in result.output


def test_down_wipe_refuses_a_directory_without_devnet_json(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("do not delete")
    result = invoke("down", "--dir", str(tmp_path), "--wipe")
    assert result.exit_code == 1
    assert "refusing to delete" in result.output
    assert keep.read_text() == "do not delete"


def test_up_refuses_a_non_empty_directory_without_a_devnet(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke("up", "-n", "1", "--dir", str(tmp_path), *ports(1))
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_up_refuses_ports_in_use(tmp_path: Path) -> None:
    options = ports(2)
    busy_port = int(options[1]) + 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", busy_port))
        busy.listen()
        result = invoke("up", "-n", "2", "--dir", str(tmp_path / "net"), *options)
    assert result.exit_code == 1
    assert f"JSON-RPC port {busy_port} (node 1)" in result.output
    assert not (tmp_path / "net").exists()


# --- layout ------------------------------------------------------------------------------


def test_layout_ports_peer_ids_and_bootnodes(tmp_path: Path) -> None:
    devnet = planned(tmp_path, 4, rpc_base=8545, p2p_base=30303)
    assert [n.rpc_port for n in devnet.nodes] == [8545, 8546, 8547, 8548]
    assert [n.p2p_port for n in devnet.nodes] == [30303, 30304, 30305, 30306]
    assert devnet.nodes[0].rpc_url == "http://127.0.0.1:8545"
    peer_ids = [n.peer_id for n in devnet.nodes]
    assert len(set(peer_ids)) == 4
    for i, node in enumerate(devnet.nodes):
        key = ValidatorKey.from_label(f"devnet-validator-{i}")
        assert node.peer_id == key.consensus.public_key.hex()
        assert node.p2p_address == f"{node.peer_id}@127.0.0.1:{30303 + i}"
        others = {n.p2p_address for n in devnet.nodes if n.index != i}
        assert set(node.bootnodes) == others and node.p2p_address not in node.bootnodes
        args = list(node.command)
        assert args[args.index("--data-dir") + 1] == str(tmp_path / f"node-{i}")
        assert args[args.index("--rpc-port") + 1] == str(8545 + i)
        assert args[args.index("--p2p-port") + 1] == str(30303 + i)
        assert args[args.index("--rpc-host") + 1] == "127.0.0.1"
        assert args[args.index("--genesis") + 1] == str(tmp_path / "genesis.json")
        assert args[args.index("--validator-key") + 1] == str(
            tmp_path / "keys" / f"validator-{i}.json"
        )
        assert args.count("--bootnode") == 3
    devnet.save()
    assert dn.Devnet.load(tmp_path) == devnet


def test_genesis_has_the_validators_and_funded_dev_accounts() -> None:
    keys = [ValidatorKey.from_label(dn.validator_label(i)) for i in range(5)]
    genesis = parse_genesis(dn.devnet_genesis(keys, 1_767_225_600).to_json())
    assert genesis.chain_id == 31338
    # Every validator's whole stake is on the committee (exact BFT), the rest is default.
    units = 5 * DEFAULT_STAKE // genesis.consensus.stake_unit_wei
    assert genesis.consensus == replace(ConsensusParams(), tau_committee=units)
    assert [v.consensus_key for v in genesis.validators] == [k.consensus.public_key for k in keys]
    assert [v.address for v in genesis.validators] == [k.address for k in keys]
    assert all(v.stake == DEFAULT_STAKE for v in genesis.validators)
    dev = {a.address for a in dev_accounts()}
    funded = dev | {k.address for k in keys}  # validators pay their own liveness proofs
    system = {c.address for c in SYSTEM_CONTRACTS}  # predeployed, with code
    # the tokenomics pools, and the presale beneficiary holding the rest of the presale's
    # genesis part (which pays every balance above): all together the whole supply
    pools = set(TOKENOMICS_ADDRESSES.values()) | {DIVIDEND_POOL}
    presale = dev_tokenomics(0).beneficiaries["presale"]
    assert set(genesis.alloc) == funded | system | pools | {presale}
    assert len(dev) == 20 and len(funded) == 25
    assert all(genesis.alloc[a].balance > 0 for a in funded)
    assert all(genesis.alloc[a].code for a in system)
    assert genesis.total_balance() == 1_400_000_000 * 10**18


def test_default_node_command_is_pv_node_of_this_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(dn.NODE_CMD_ENV, raising=False)
    command = dn.node_command()
    assert command[-1] == "node"
    assert Path(command[0]).parent == Path(sys.executable).parent
    monkeypatch.setenv(dn.NODE_CMD_ENV, "/bin/fake --flag")
    assert dn.node_command() == ("/bin/fake", "--flag")


# --- pid bookkeeping ---------------------------------------------------------------------


def test_status_reports_dead_and_unstarted_nodes_as_not_running(tmp_path: Path) -> None:
    write_devnet(tmp_path, [dead_pid(), None])
    nodes = status_nodes(tmp_path)
    assert [n["running"] for n in nodes] == [False, False]
    assert [n["state"] for n in nodes] == ["exited", "stopped"]
    assert all(n["height"] is None for n in nodes)
    table = invoke("status", "--dir", str(tmp_path))
    assert table.exit_code == 0 and "0/2 nodes running" in table.output


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process whose cmdline names node 0's data dir, but not as --data-dir."""
    code = "import time; time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "node-0")])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.e2e
def test_stale_pid_of_another_process_is_never_ours(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    devnet = write_devnet(tmp_path, [sleeper.pid])
    assert not dn.is_our_node(devnet.nodes[0])
    [node] = status_nodes(tmp_path)
    assert node["state"] == "stale" and not node["running"]
    stopped = invoke("stop", "0", "--dir", str(tmp_path))
    assert stopped.exit_code == 0
    assert f"not running (pid {sleeper.pid} is another process)" in stopped.output
    assert invoke("down", "--dir", str(tmp_path)).exit_code == 0
    assert sleeper.poll() is None, "a process that is not our node was signalled"
    assert state(tmp_path)["nodes"][0]["pid"] is None


@pytest.mark.e2e
def test_stop_signals_our_node_and_a_zombie_counts_as_exited(tmp_path: Path) -> None:
    data_dir = tmp_path / "node-0"
    code = "import time; time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code, "--data-dir", str(data_dir)])
    try:
        devnet = write_devnet(tmp_path, [proc.pid])
        assert dn.is_our_node(devnet.nodes[0])
        assert status_nodes(tmp_path)[0]["state"] == "unresponsive"  # no RPC
        # The process is our child and stays a zombie until we reap it: it still stops.
        result = invoke("stop", "0", "--dir", str(tmp_path), "--timeout", "20")
        assert result.exit_code == 0 and "stopped node 0" in result.output
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert state(tmp_path)["nodes"][0]["pid"] is None
        again = invoke("stop", "0", "--dir", str(tmp_path))
        assert again.exit_code == 0 and "not running (stopped)" in again.output
    finally:
        proc.kill()
        proc.wait()


# --- processes (fake node) ---------------------------------------------------------------


@pytest.fixture
def fake_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_node.py"
    script.write_text(FAKE_NODE)
    monkeypatch.setenv(dn.NODE_CMD_ENV, f"{sys.executable} {script}")
    return script


@pytest.fixture
def net_dir(tmp_path: Path) -> Iterator[Path]:
    """A devnet directory whose nodes are stopped (and checked gone) after the test."""
    directory = tmp_path / "net"
    yield directory
    if (directory / "devnet.json").exists():
        pids = [n["pid"] for n in state(directory)["nodes"] if n["pid"]]
        runner.invoke(app, ["devnet", "down", "--dir", str(directory), "--timeout", "1"])
        for pid in pids:
            if alive(pid) and str(directory) in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"node pid {pid} outlived `pv devnet down`")


@pytest.mark.e2e
def test_up_status_stop_start_down(fake_node: Path, net_dir: Path) -> None:
    options = ports(3)
    result = invoke("up", "-n", "3", "--dir", str(net_dir), *options, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == state(net_dir) and doc["chainId"] == 31338
    rpc_base = int(options[1])
    for i, node in enumerate(doc["nodes"]):
        assert node["rpcUrl"] == f"http://127.0.0.1:{rpc_base + i}"
        assert Path(node["log"]) == net_dir / f"node-{i}.log"
        argv = json.loads((net_dir / f"node-{i}" / "argv.json").read_text())
        assert argv == node["command"][2:]  # the fake got exactly the recorded arguments
        assert node["p2pAddress"] not in argv
        assert (net_dir / "keys" / f"validator-{i}.json").exists()
    genesis = parse_genesis(json.loads((net_dir / "genesis.json").read_text()))
    assert len(genesis.validators) == 3

    nodes = status_nodes(net_dir)
    assert [n["state"] for n in nodes] == ["running"] * 3
    assert [(n["height"], n["peers"], n["round"]) for n in nodes] == [(7, 2, 1)] * 3

    again = invoke("up", "-n", "3", "--dir", str(net_dir), *options)
    assert again.exit_code == 1 and "already running" in again.output

    old_pid = nodes[1]["pid"]
    stopped = invoke("stop", "1", "--dir", str(net_dir))
    assert stopped.exit_code == 0 and "stopped node 1" in stopped.output
    assert not alive(old_pid)
    assert [n["running"] for n in status_nodes(net_dir)] == [True, False, True]

    started = invoke("start", "1", "--dir", str(net_dir))
    assert started.exit_code == 0, started.output
    restarted = status_nodes(net_dir)[1]
    assert restarted["running"] and restarted["pid"] != old_pid
    assert rpc(restarted["rpcUrl"], "eth_blockNumber") == "0x7"
    assert "already running" in invoke("start", "1", "--dir", str(net_dir)).output

    genesis_text = (net_dir / "genesis.json").read_text()
    pids = [n["pid"] for n in status_nodes(net_dir)]
    down = invoke("down", "--dir", str(net_dir))
    assert down.exit_code == 0 and "stopped 3 node(s)" in down.output
    assert not any(alive(pid) for pid in pids)
    assert all(n["pid"] is None for n in state(net_dir)["nodes"])

    # A stopped devnet is restarted with the same chain; --fresh starts a new one.
    reused = invoke("up", "--dir", str(net_dir), "--json")
    assert reused.exit_code == 0, reused.output
    assert len(json.loads(reused.stdout)["nodes"]) == 3
    assert (net_dir / "genesis.json").read_text() == genesis_text
    assert invoke("down", "--dir", str(net_dir)).exit_code == 0
    other = invoke("up", "-n", "2", "--dir", str(net_dir))
    assert other.exit_code == 1 and "--fresh" in other.output
    (net_dir / "node-0" / "marker").write_text("old chain")
    fresh = invoke("up", "-n", "2", "--dir", str(net_dir), "--fresh", "--json")
    assert fresh.exit_code == 0, fresh.output
    assert len(state(net_dir)["nodes"]) == 2
    assert not (net_dir / "node-0" / "marker").exists()
    assert not (net_dir / "node-2").exists()

    wiped = invoke("down", "--dir", str(net_dir), "--wipe")
    assert wiped.exit_code == 0, wiped.output
    assert not net_dir.exists()


@pytest.mark.e2e
def test_status_without_consensus_rpc_falls_back(
    fake_node: Path, net_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NODE_NO_CONSENSUS", "1")
    result = invoke("up", "-n", "1", "--dir", str(net_dir), *ports(1))
    assert result.exit_code == 0, result.output
    [node] = status_nodes(net_dir)
    assert node["running"] and node["height"] == 7
    assert node["peers"] is None and node["round"] is None


@pytest.mark.e2e
def test_a_node_that_fails_to_start_is_named_with_its_log(
    fake_node: Path, net_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NODE_FAIL", "1")
    result = invoke("up", "-n", "2", "--dir", str(net_dir), *ports(2), "--timeout", "30")
    assert result.exit_code == 1
    assert re.search(r"node [01] exited before answering JSON-RPC", result.output)
    assert "cannot open the chain [boom]" in result.output  # the log tail, verbatim
    assert all(n["pid"] is None for n in state(net_dir)["nodes"])


@pytest.mark.e2e
def test_stop_kills_a_node_that_ignores_sigterm(
    fake_node: Path, net_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NODE_IGNORE_TERM", "1")
    assert invoke("up", "-n", "1", "--dir", str(net_dir), *ports(1)).exit_code == 0
    pid = state(net_dir)["nodes"][0]["pid"]
    result = invoke("stop", "0", "--dir", str(net_dir), "--timeout", "0.5")
    assert result.exit_code == 0 and "killed it" in result.output
    assert not alive(pid)


# --- the real node -----------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_real_devnet_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dn.NODE_CMD_ENV, raising=False)
    directory = tmp_path / "devnet"
    pv = [str(PV_BIN), "devnet"]
    up = subprocess.run(
        [*pv, "up", "--validators", "4", "--dir", str(directory), *ports(4), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr
        urls = [n["rpcUrl"] for n in json.loads(up.stdout)["nodes"]]
        deadline = time.monotonic() + 180
        while min(heights := [int(rpc(u, "eth_blockNumber"), 16) for u in urls]) < 3:
            if time.monotonic() > deadline:
                pytest.fail(f"heights {heights} after 180 s\n{_logs(directory)}", pytrace=False)
            time.sleep(1)
        hashes = {rpc(u, "eth_getBlockByNumber", ["0x3", False])["hash"] for u in urls}
        assert len(hashes) == 1, hashes

        # time travel: every validator's clock moves, also a stopped one's (saved offset)
        def run(*args: str) -> Any:
            done = subprocess.run(
                [*pv, *args, "--dir", str(directory)], capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        run("stop", "3")
        warp = json.loads(run("warp", "3600", "--json"))
        assert [(n["index"], n["running"], n["offset"]) for n in warp["nodes"]] == [
            (0, True, 3600), (1, True, 3600), (2, True, 3600), (3, False, 3600),
        ]  # fmt: skip
        assert json.loads((directory / "node-3" / "dev-clock.json").read_text())["offset"] == 3600
        run("start", "3")
        assert rpc(urls[3], "pv_nodeInfo")["devClock"] is True
        future = time.time() + 3500

        def head(u: str) -> dict[str, Any]:
            return rpc(u, "eth_getBlockByNumber", ["latest", False])  # type: ignore[no-any-return]

        deadline = time.monotonic() + 120
        while min(int(head(u)["timestamp"], 16) for u in urls) < future:
            if time.monotonic() > deadline:
                pytest.fail(f"no block an hour ahead after warp\n{_logs(directory)}")
            time.sleep(1)
        number = min(int(head(u)["number"], 16) for u in urls)
        hashes = {rpc(u, "eth_getBlockByNumber", [hex(number), False])["hash"] for u in urls}
        assert len(hashes) == 1, hashes
    finally:
        down = subprocess.run(
            [*pv, "down", "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert down.returncode == 0, down.stderr


def _logs(directory: Path) -> str:
    return "\n".join(
        f"--- {log.name} ---\n{dn.log_tail(log)}" for log in sorted(directory.glob("node-*.log"))
    )
