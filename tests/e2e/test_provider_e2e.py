"""PowerVerse Infra end to end on a real four-validator devnet, through `pv` and the SDK.

A provider runs `pv provider init` (discovery, benchmarks, signed evidence, the tiny VM image),
`pv provider register` (mint with the agent set; the foundation verifies with the evidence
hash; register again lists it) and `pv provider up` (the agent daemon, a real process). A
consumer puts an SSH key in its DID document and rents the resource with `pv market rent`: the
agent boots a real QEMU VM, confirms the rental on chain, and the consumer logs in over the
forwarded SSH port with its own key (the port comes from the agent's signed API, encrypted to
the consumer). Time moves past the end (`pv devnet warp`): the agent settles and wipes the VM.
Then a task order is taken, run in the sandbox, submitted and accepted. Then the agent is
killed with SIGKILL right after a rent, before it could confirm, and restarted: the rental is
served once (one VM, one confirm) and nothing is paid twice. Last, the foundation (a verifier)
re-verifies the resource with `pv resource challenge`: a fair challenge passes, one the agent
cannot finish before its deadline is flagged on chain.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from powerverse.crypto.keys import dev_accounts
from powerverse.infra.apiclient import AgentClient
from powerverse.infra.drivers.qemu import QemuDriver
from powerverse.infra.taskspec import encode_data_uri
from powerverse.market.client import ChainClient
from powerverse.market.did import DidRegistry, PublicKey
from powerverse.market.orders import Orders, OrderState, Specs
from powerverse.market.rentals import Rentals, RentalState
from tests.e2e.nodeproc import PV_BIN, REPO_ROOT, free_port
from tests.e2e.pvcli import PvCli
from tests.e2e.test_market_e2e import DevnetProcesses, wait_for
from tests.infra.conftest import require_tools

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FOUNDATION, PROVIDER, CONSUMER = 0, 3, 4
PVC = 10**18
DAY = 86_400


def _client(url: str, i: int) -> ChainClient:
    return ChainClient(url, Account.from_key(dev_accounts()[i].private_key))


class Agent:
    """`pv provider up` as a background process."""

    def __init__(self, directory: Path, url: str) -> None:
        self.directory, self.url = directory, url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "agent.log"

    def start(self) -> None:
        env = {**os.environ, "PV_RPC_URL": self.url}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(PV_BIN), "provider", "up", "--dir", str(self.directory),
                 "--dev-account", str(PROVIDER), "--accel", "tcg"],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def explain(self) -> str:
        """The agent's journal and the tail of its log, for a failure message."""
        try:
            journal = json.dumps(self.status(), indent=1)[-4000:]
        except (subprocess.SubprocessError, ValueError) as exc:
            journal = f"(no status: {exc})"
        tail = self.log.read_text(errors="replace")[-8000:] if self.log.exists() else ""
        return f"agent status:\n{journal}\nagent log (tail):\n{tail}"

    def status(self) -> dict[str, Any]:
        done = subprocess.run(
            [str(PV_BIN), "provider", "status", "--dir", str(self.directory), "--json"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc


def _qemu_for(directory: Path) -> list[psutil.Process]:
    """QEMU processes running VMs of this provider directory."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "qemu-system" in (proc.info["name"] or "") and str(directory) in cmd:
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_tools("qemu-system-x86_64", "qemu-img", "genisoimage", "busybox", "dropbear", "bwrap")
    root = tmp_path_factory.mktemp("provider-e2e")
    devnet = DevnetProcesses(root / "devnet")
    agent: Agent | None = None
    try:
        devnet.up()
        url = devnet.url
        pv = PvCli(url)
        provider_dir = root / "provider"
        api_port = free_port()
        init = pv.ok(
            "provider", "init", "--dir", str(provider_dir), "--rpc-url", url,
            "--tiny-image", "--quick", "--region", "eu-west", "--lat", "48.85", "--lon", "2.35",
            "--vcpus", "1", "--memory-mib", "192", "--price", "2", "--take-tasks",
            "--api-port", str(api_port),
        )  # fmt: skip
        first = pv.ok("provider", "register", "--dir", str(provider_dir), signer=PROVIDER)
        (resource,) = first["resources"]
        assert resource["verified"] is False and resource["listed"] is False
        token = resource["tokenId"]
        assert first["evidenceHash"] == init["evidenceHash"]
        verified = pv.ok("resource", "verify", str(token), "--evidence-file",
                         str(provider_dir / "evidence.json"), signer=FOUNDATION)  # fmt: skip
        assert verified["verification"]["evidenceHash"] == init["evidenceHash"]
        second = pv.ok("provider", "register", "--dir", str(provider_dir), signer=PROVIDER)
        assert second["resources"][0] == {"name": "vm", "tokenId": token, "verified": True,
                                          "listed": True}  # fmt: skip
        agent = Agent(provider_dir, url)
        agent.start()
        wait_for("the agent's API", lambda: _api_up(api_port), timeout=120)
        api = f"http://127.0.0.1:{api_port}"
        yield {"devnet": devnet, "pv": pv, "url": url, "token": token, "agent": agent,
               "dir": provider_dir, "api": api, "init": init}  # fmt: skip
    finally:
        if agent is not None:
            agent.stop()
        with contextlib.suppress(Exception):  # the VMs, with their taps, bridges and forwards
            driver = QemuDriver(root / "provider" / "vms")
            for instance in driver.list_instances():
                driver.destroy(instance)
        for proc in _qemu_for(root):
            proc.kill()
        devnet.down()


def _api_up(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ssh(
    key: Path, port: int, command: str, host: str = "127.0.0.1"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
         "-o", "LogLevel=ERROR", f"root@{host}", command],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def _head_time(url: str) -> int:
    return int(_client(url, 0).w3.eth.get_block("latest")["timestamp"])


def test_rent_a_vm_log_in_with_the_did_key_and_settle_at_expiry(
    world: dict[str, Any], tmp_path: Path
) -> None:
    url, pv, token = world["url"], world["pv"], world["token"]
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    blob = base64.b64decode(key.with_suffix(".pub").read_text().split()[1])
    consumer = _client(url, CONSUMER)
    did = DidRegistry(consumer)
    did.add_key(did.own_did(), PublicKey("ssh-1", "ssh-ed25519", blob))

    rented = pv.ok("market", "rent", str(token), "1", signer=CONSUMER)
    rid = rented["rentalId"]
    rentals = Rentals(consumer)
    wait_for("the agent to confirm", lambda: rentals.rental(rid).state == RentalState.ACTIVE,
             timeout=180, explain=world["agent"].explain)  # fmt: skip

    api = AgentClient(world["api"], Account.from_key(dev_accounts()[CONSUMER].private_key))
    creds = api.credentials(rid)
    assert creds.ssh is not None and creds.rental_id == rid
    host, port = creds.ssh.host, creds.ssh.port
    # as root the agent runs each lease on a routed network of its own (SSH through a host
    # port on the host's address); otherwise user-mode networking on 127.0.0.1
    routed = os.geteuid() == 0
    assert host.startswith("127.") != routed
    wait_for("SSH into the VM", lambda: _ssh(key, port, "true", host).returncode == 0,
             timeout=180)  # fmt: skip
    done = _ssh(key, port, "hostname; grep -c ^processor /proc/cpuinfo", host)
    assert done.stdout.split() == [f"rental-{rid}", "1"]
    if routed:  # the lease's VM cannot reach the host's services (the agent API, the chain)
        api_port = world["api"].rsplit(":", 1)[1]
        probe = _ssh(key, port, f"nc -w 3 {host} {api_port} </dev/null 2>&1 | head -n 1", host)
        assert "can't connect" in probe.stdout
    assert api.lease(rid).state == "running"
    stranger = AgentClient(world["api"], Account.from_key(dev_accounts()[7].private_key))
    with pytest.raises(Exception, match="403"):
        stranger.lease(rid)
    api.close()
    stranger.close()

    owed_before = Rentals(_client(url, PROVIDER)).owed()
    end = rentals.rental(rid).end
    world["devnet"].devnet("warp", str(end - _head_time(url) + 5))
    wait_for("the agent to settle", lambda: rentals.rental(rid).state == RentalState.SETTLED,
             timeout=180, explain=world["agent"].explain)  # fmt: skip
    wait_for("the VM to be wiped", lambda: not _qemu_for(world["dir"]), timeout=60)
    rental = rentals.rental(rid)
    fee = 2 * PVC * rental.fee_bps // 10_000
    assert Rentals(_client(url, PROVIDER)).owed() - owed_before == 2 * PVC - fee

    def lease_state() -> str:
        return str(
            next(x for x in world["agent"].status()["leases"] if x["rentalId"] == rid)["state"]
        )

    wait_for("the lease to be done", lambda: lease_state() == "done", timeout=30)
    assert not list((world["dir"] / "vms" / "instances").iterdir())


def test_a_task_is_taken_run_and_accepted(world: dict[str, Any]) -> None:
    url = world["url"]
    orders = Orders(_client(url, CONSUMER))
    spec = encode_data_uri({"argv": ["sh", "-c", "echo 42 > /output/answer"],
                            "limits": {"wall_seconds": 30}})  # fmt: skip
    posted = orders.post_task(spec, Specs(), reward=PVC, deadline=_head_time(url) + DAY)
    oid = posted.order_id
    wait_for("the result", lambda: orders.order(oid).state == OrderState.SUBMITTED, timeout=180,
             explain=world["agent"].explain)  # fmt: skip
    order = orders.order(oid)
    assert order.token_id == world["token"] and order.result_cid.startswith("bafkrei")
    store = world["dir"] / "objects"
    manifest = json.loads(next(store.rglob(order.result_cid)).read_bytes())
    assert manifest["outcome"] == "succeeded"
    answer = next(store.rglob(manifest["files"]["answer"])).read_text()
    assert answer == "42\n"
    orders.accept(oid)
    assert orders.order(oid).state == OrderState.COMPLETED


def test_agent_killed_mid_provision_serves_the_rental_once(world: dict[str, Any]) -> None:
    url, pv, agent = world["url"], world["pv"], world["agent"]
    rentals = Rentals(_client(url, CONSUMER))
    rented = pv.ok("market", "rent", str(world["token"]), "1", signer=CONSUMER)
    rid = rented["rentalId"]

    def provisioning() -> bool:
        return any(x["rentalId"] == rid for x in agent.status()["leases"])

    wait_for("the agent to pick the rental up", provisioning, timeout=120, explain=agent.explain)
    agent.kill9()  # mid-provision: the lease is recorded, the VM may or may not be up
    agent.start()
    wait_for("the confirm", lambda: rentals.rental(rid).state == RentalState.ACTIVE,
             timeout=180, explain=agent.explain)  # fmt: skip
    time.sleep(3)
    vms = _qemu_for(world["dir"])
    assert len(vms) == 1, [p.info["cmdline"] for p in vms]  # adopted or started, never twice
    market = Rentals(_client(url, 0)).contract
    topic = "0x" + keccak(text="RentalConfirmed(uint256,uint64,uint64)").hex()
    logs = _client(url, 0).w3.eth.get_logs(
        {"fromBlock": 0, "address": market.address,
         "topics": [topic, "0x" + rid.to_bytes(32, "big").hex()]}  # type: ignore[typeddict-item]
    )  # fmt: skip
    assert len(logs) == 1  # confirmed exactly once
    status = agent.status()
    lease = next(x for x in status["leases"] if x["rentalId"] == rid)
    assert lease["state"] == "confirmed"
    assert rentals.rental(rid).escrow == 2 * PVC  # held once, nothing paid out twice


def test_the_agent_keeps_the_device_online_for_the_monthly_dividends(
    world: dict[str, Any],
) -> None:
    """Once dividend epochs run (30 days after listing), the agent sends the device's
    heartbeat to the dividend pool by itself, once per slot."""
    pv, url, token = world["pv"], world["url"], world["token"]
    status = pv.ok("dividends", "status")
    start = int(status["firstEpochStart"])
    world["devnet"].devnet("warp", str(max(0, start - _head_time(url)) + 120))

    def beats() -> int:
        done = pv.run("dividends", "device", str(token))
        return int(json.loads(done.stdout)["heartbeats"]) if done.returncode == 0 else 0

    wait_for("the agent's device heartbeat", lambda: beats() >= 1, timeout=180,
             explain=world["agent"].explain)  # fmt: skip
    time.sleep(5)
    assert beats() == 1  # one per slot, however often the agent looks


def test_a_verifier_rechallenges_the_resource_and_flags_a_failure(
    world: dict[str, Any], tmp_path: Path
) -> None:
    pv, token = world["pv"], world["token"]
    small = ("--cpu-rounds", "20000", "--memory-mib", "8", "--disk-mib", "4")
    answer = tmp_path / "answer.json"
    passed = pv.ok("resource", "challenge", str(token), "--window", "120", *small,
                   "--baseline", str(world["dir"] / "evidence.json"), "--tolerance", "0.05",
                   "--out", str(answer), "--flag", signer=FOUNDATION)  # fmt: skip
    assert passed["status"] == "ok" and passed["findings"] == [] and passed["flagTx"] is None
    signed = json.loads(answer.read_text())
    assert signed["doc"]["challenge"] == passed["challenge"]
    assert signed["doc"]["agent"] == world["init"]["agent"]
    # only a VERIFIER_ROLE holder's challenge is run
    refused = pv.run("resource", "challenge", str(token), *small, signer=CONSUMER)
    assert refused.returncode == 1 and "VERIFIER_ROLE" in refused.stderr
    # a deadline no agent can meet with this much work: FLAG, and flagged on chain
    late = pv.run("resource", "challenge", str(token), "--window", "2", "--cpu-rounds",
                  "6000000", "--memory-mib", "8", "--disk-mib", "4", "--flag", "--json",
                  signer=FOUNDATION)  # fmt: skip
    assert late.returncode == 1, late.stderr
    verdict = json.loads(late.stdout)
    assert verdict["status"] == "flag" and verdict["flagTx"] is not None
    assert "deadline" in {f["field"] for f in verdict["findings"]}
    shown = pv.ok("resource", "show", str(token))
    assert shown["verification"]["status"] == "flagged"
    assert shown["verification"]["evidenceHash"] == verdict["evidenceHash"]
    assert shown["performPoints"] == 0
