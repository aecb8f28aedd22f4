"""Provider agent figures (issue 5): rental-to-reachable time, VMs per host, the agent's own cost.

1. Rentals: a dev node (`pv node --dev`) and the real agent daemon (`pv provider up`) with the
   tiny image; N times a consumer rents, and the time from sending the rental transaction to a
   successful SSH login into the VM (with the consumer's DID key) is measured; then chain time
   moves past the end and the agent settles and wipes the VM before the next rental. Prints p50
   and p99, and the agent daemon's CPU seconds and peak RSS over the run.
2. Density: small VMs of the tiny image (1 vCPU, 96 MiB: the cloud kernel needs more than 64)
   are started on this host one after the other until --max-vms or a boot fails; prints how
   many ran at once, the boot time of each and the host memory each QEMU process takes.

    .venv/bin/python bench/provider.py --rentals 5 --max-vms 8
    .venv/bin/python bench/provider.py --json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import psutil
from eth_account import Account

from bench._procs import NodeProcess, free_port, ours_command, run_guarded
from powerverse.crypto.keys import dev_accounts
from powerverse.infra.apiclient import AgentClient
from powerverse.infra.drivers.base import BootSource, InstanceSpec, NetworkSpec
from powerverse.infra.drivers.qemu import QemuDriver
from powerverse.infra.tinyimage import BOOT_MARKER, build_tiny_image
from powerverse.market.client import ChainClient
from powerverse.market.did import DidRegistry, PublicKey
from powerverse.market.rentals import Rentals, RentalState

PV = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "pv"
PROVIDER, CONSUMER = 3, 4


def _pv(*args: str, url: str) -> Any:
    done = subprocess.run(
        [str(PV), *args, "--json"], capture_output=True, text=True, check=False,
        env={**os.environ, "PV_RPC_URL": url},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pv {' '.join(args)}: {done.stderr or done.stdout}")
    return json.loads(done.stdout)


def _wait(what: str, check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _ssh_ok(key: Path, port: int, host: str = "127.0.0.1") -> bool:
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
         "-o", "LogLevel=ERROR", f"root@{host}", "true"],
        capture_output=True, timeout=20, check=False,
    ).returncode == 0  # fmt: skip


def rentals(root: Path, count: int) -> dict[str, Any]:
    """Rental transaction -> SSH login, ``count`` times, with a real agent daemon."""
    port = free_port()
    with NodeProcess("dev", lambda d: ours_command(port, d / "data"), port) as node:
        url = node.url
        provider_dir, api_port = root / "provider", free_port()
        _pv("provider", "init", "--dir", str(provider_dir), "--rpc-url", url, "--tiny-image",
            "--quick", "--memory-mib", "128", "--api-port", str(api_port), url=url)  # fmt: skip
        reg = _pv("provider", "register", "--dir", str(provider_dir), "--dev-account",
                  str(PROVIDER), url=url)  # fmt: skip
        token = reg["resources"][0]["tokenId"]
        _pv("resource", "verify", str(token), "--evidence-hash", reg["evidenceHash"],
            "--dev-account", "0", url=url)  # fmt: skip
        _pv("provider", "register", "--dir", str(provider_dir), "--dev-account", str(PROVIDER),
            url=url)  # fmt: skip
        key = root / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        account = Account.from_key(dev_accounts()[CONSUMER].private_key)
        consumer = ChainClient(url, account)
        did = DidRegistry(consumer)
        blob = base64.b64decode(key.with_suffix(".pub").read_text().split()[1])
        did.add_key(did.own_did(), PublicKey("ssh-1", "ssh-ed25519", blob))
        log = open(root / "agent.log", "wb")  # noqa: SIM115
        agent = subprocess.Popen(
            [str(PV), "provider", "up", "--dir", str(provider_dir), "--accel", "tcg"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PV_RPC_URL": url},
        )  # fmt: skip
        try:
            proc = psutil.Process(agent.pid)
            _wait("the agent API", lambda: _api(api_port))
            api = AgentClient(f"http://127.0.0.1:{api_port}", account)
            market = Rentals(consumer)
            times, peak = [], 0
            cpu0 = sum(proc.cpu_times()[:2])
            for i in range(count):
                start = time.perf_counter()
                rid = market.rent(token, 1).rental_id
                _wait("confirm", lambda r=rid: market.rental(r).state == RentalState.ACTIVE)
                creds = api.credentials(rid)
                assert creds.ssh is not None
                ssh_host, ssh_port = creds.ssh.host, creds.ssh.port
                _wait("ssh", lambda h=ssh_host, p=ssh_port: _ssh_ok(key, p, h))
                times.append(time.perf_counter() - start)
                peak = max(peak, proc.memory_info().rss)
                print(f"rental {i + 1}/{count}: reachable after {times[-1]:.1f} s", file=sys.stderr)
                end = market.rental(rid).end
                node_rpc(url, "evm_increaseTime", [end - _head(consumer) + 5])
                node_rpc(url, "evm_mine", [])
                _wait("settle", lambda r=rid: market.rental(r).state == RentalState.SETTLED)
                _wait("wipe", lambda: not any((provider_dir / "vms" / "instances").iterdir()))
            cpu = sum(proc.cpu_times()[:2]) - cpu0
            api.close()
        finally:
            agent.terminate()
            agent.wait(timeout=30)
            log.close()
    ordered = sorted(times)
    return {
        "rentals": count,
        "reachable_p50_s": round(statistics.median(ordered), 2),
        "reachable_p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "reachable_all_s": [round(t, 2) for t in times],
        "agent_cpu_s": round(cpu, 2),
        "agent_peak_rss_mib": peak >> 20,
    }


def _api(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _head(client: ChainClient) -> int:
    return int(client.w3.eth.get_block("latest")["timestamp"])


def node_rpc(url: str, method: str, params: list[Any]) -> Any:
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url, json=body, timeout=30).json()["result"]


def density(root: Path, max_vms: int) -> dict[str, Any]:
    """Small VMs started one after the other until max_vms or a failed boot."""
    image = build_tiny_image(root / "images")
    driver = QemuDriver(root / "vms")
    boots, rss = [], []
    try:
        for i in range(max_vms):
            start = time.perf_counter()
            driver.spawn(
                InstanceSpec(
                    instance_id=f"small-{i}", vcpus=1, memory_mib=96,
                    boot=BootSource(
                        kernel=image.kernel, initrd=image.initrd, cmdline=image.cmdline
                    ),
                    network=NetworkSpec(mode="none"),
                )
            )  # fmt: skip
            deadline = time.monotonic() + 180
            while BOOT_MARKER not in driver.console_log(f"small-{i}"):
                if time.monotonic() > deadline or driver.info(f"small-{i}").pid is None:
                    break
                time.sleep(0.2)
            else:
                boots.append(time.perf_counter() - start)
                print(f"VM {i + 1} booted in {boots[-1]:.1f} s", file=sys.stderr)
                continue
            break
        for i in range(len(boots)):
            pid = driver.info(f"small-{i}").pid
            if pid:
                rss.append(psutil.Process(pid).memory_info().rss)
    finally:
        for instance in driver.list_instances():
            driver.destroy(instance)
    return {
        "vms_at_once": len(boots),
        "boot_s": [round(b, 1) for b in boots],
        "qemu_rss_mib_avg": (sum(rss) // len(rss)) >> 20 if rss else 0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rentals", type=int, default=5)
    parser.add_argument("--max-vms", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    def run() -> int:
        with tempfile.TemporaryDirectory(prefix="pv-bench-provider-") as tmp:
            root = Path(tmp)
            result = {
                "host": {"cpus": os.cpu_count(), "memory_mib": psutil.virtual_memory().total >> 20},
                "accel": "tcg",
                "rental_to_ssh": rentals(root / "r", args.rentals),
                "density": density(root / "d", args.max_vms),
            }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            r, d = result["rental_to_ssh"], result["density"]
            print(f"rental tx -> SSH login (TCG, {r['rentals']} rentals): p50 "
                  f"{r['reachable_p50_s']} s, p99 {r['reachable_p99_s']} s")  # fmt: skip
            print(f"agent daemon: {r['agent_cpu_s']} CPU-s over the run, peak RSS "
                  f"{r['agent_peak_rss_mib']} MiB")  # fmt: skip
            print(f"small VMs (1 vCPU, 96 MiB) at once: {d['vms_at_once']} (boot {d['boot_s']} s;"
                  f" QEMU RSS ~{d['qemu_rss_mib_avg']} MiB each)")  # fmt: skip
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
