"""The agent API over a real HTTP server (uvicorn on a real socket): only the lessee sees and
controls its VM; non-lessees, replays, expired signatures and tampered bodies are refused.

The VM driver is an in-memory one (this is the API layer; real VMs are in the driver and
end-to-end tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from eth_account import Account

from powerverse.infra.api import AgentIdentity, LeaseView, create_app
from powerverse.infra.apiclient import AgentApiError, AgentClient
from powerverse.infra.auth import MemoryNonceStore, sign_request
from powerverse.infra.drivers.base import InstanceInfo, InstanceState, InstanceUsage
from powerverse.infra.exceptions import InstanceNotFound, InvalidInstanceState

RENTER = Account.from_key(b"\x05" * 32)
STRANGER = Account.from_key(b"\x06" * 32)
AGENT = Account.from_key(b"\x07" * 32).address


@dataclass
class Vm:
    state: InstanceState = InstanceState.RUNNING
    actions: list[str] = field(default_factory=list)


class FakeDriver:
    def __init__(self) -> None:
        self.vms = {"rental-1": Vm(), "rental-2": Vm()}

    def _vm(self, instance_id: str) -> Vm:
        if instance_id not in self.vms:
            raise InstanceNotFound(instance_id)
        return self.vms[instance_id]

    def info(self, instance_id: str) -> InstanceInfo:
        vm = self._vm(instance_id)
        return InstanceInfo(
            instance_id=instance_id, state=vm.state, vcpus=1, memory_mib=256, accel="tcg",
            ssh_host="127.0.0.1", ssh_port=2201,
        )  # fmt: skip

    def suspend(self, instance_id: str) -> None:
        vm = self._vm(instance_id)
        if vm.state != InstanceState.RUNNING:
            raise InvalidInstanceState("not running")
        vm.state = InstanceState.PAUSED

    def resume(self, instance_id: str) -> None:
        vm = self._vm(instance_id)
        if vm.state != InstanceState.PAUSED:
            raise InvalidInstanceState("not suspended")
        vm.state = InstanceState.RUNNING

    def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        self._vm(instance_id).actions.append("hard" if hard else "soft")

    def console_log(self, instance_id: str, *, max_bytes: int = 65536) -> str:
        self._vm(instance_id)
        return ("boot log " * 100)[-max_bytes:]

    def usage(self, instance_id: str) -> InstanceUsage:
        self._vm(instance_id)
        return InstanceUsage(
            instance_id=instance_id, cpu_seconds=1.5, memory_rss_bytes=1 << 20,
            disk_read_bytes=10, disk_write_bytes=20, net_rx_bytes=0, net_tx_bytes=0,
            uptime_seconds=5.0,
        )  # fmt: skip


class Leases:
    def __init__(self) -> None:
        now = int(time.time())
        self.items = {
            1: LeaseView(rental_id=1, lessee=RENTER.address, instance_id="rental-1",
                         end=now + 3600, active=True),
            2: LeaseView(rental_id=2, lessee=RENTER.address, instance_id="rental-2",
                         end=now - 1, active=True),  # past its end
        }  # fmt: skip

    def lease(self, rental_id: int) -> LeaseView | None:
        return self.items.get(rental_id)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeDriver]]:
    driver = FakeDriver()
    app = create_app(
        identity=AgentIdentity(chain_id=31337, address=AGENT, resources=(7,)),
        leases=Leases(),
        driver=driver,  # type: ignore[arg-type]
        nonces=MemoryNonceStore(),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url + "/v1/health").raise_for_status()
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield url, driver
    srv.should_exit = True
    thread.join(timeout=10)


def test_the_lessee_sees_and_controls_its_vm(server: tuple[str, FakeDriver]) -> None:
    url, driver = server
    client = AgentClient(url, RENTER)
    assert client.agent() == {
        "address": AGENT, "chainId": 31337, "version": "1", "accel": "tcg", "resources": [7],
    }  # fmt: skip
    vm = client.lease(1)
    assert vm["state"] == "running" and vm["ssh"] == {
        "host": "127.0.0.1",
        "port": 2201,
        "user": "root",
    }
    assert client.action(1, "suspend")["state"] == "paused"
    with pytest.raises(AgentApiError) as info:
        client.action(1, "suspend")
    assert info.value.status == 409
    assert client.action(1, "resume")["state"] == "running"
    client.action(1, "reboot", hard=True)
    assert driver.vms["rental-1"].actions == ["hard"]
    assert client.console(1, max_bytes=9) == "boot log "
    assert client.usage(1)["cpuSeconds"] == 1.5
    creds = client.credentials(1)
    assert creds["ssh"]["port"] == 2201 and creds["rentalId"] == 1
    client.close()


def test_everyone_else_is_refused(server: tuple[str, FakeDriver]) -> None:
    url, _ = server
    stranger = AgentClient(url, STRANGER)
    renter = AgentClient(url, RENTER)
    for call, status in [
        (lambda: stranger.lease(1), 403),
        (lambda: stranger.action(1, "reboot"), 403),
        (lambda: renter.lease(99), 404),
        (lambda: renter.lease(2), 410),
    ]:
        with pytest.raises(AgentApiError) as info:
            call()
        assert info.value.status == status
    stranger.close()
    renter.close()


def _raw(url: str, path: str, headers: dict[str, str], body: bytes = b"") -> httpx.Response:
    return httpx.request(
        "POST" if body else "GET", url + path, headers=headers, content=body, timeout=10
    )


def test_replayed_expired_tampered_and_unsigned_requests_get_401(
    server: tuple[str, FakeDriver],
) -> None:
    url, _ = server
    body = b'{"action": "reboot"}'

    def headers(**over: object) -> dict[str, str]:
        args = {"chain_id": 31337, "agent": AGENT, "method": "POST",
                "path": "/v1/leases/1/actions", "body": body, **over}  # fmt: skip
        return sign_request(RENTER, **args) | {"content-type": "application/json"}  # type: ignore[arg-type]

    good = headers()
    assert _raw(url, "/v1/leases/1/actions", good, body).status_code == 200
    replay = _raw(url, "/v1/leases/1/actions", good, body)
    assert replay.status_code == 401 and "replayed" in replay.json()["detail"]
    old = _raw(url, "/v1/leases/1/actions", headers(timestamp=int(time.time()) - 3600), body)
    assert old.status_code == 401 and "expired" in old.json()["detail"]
    tampered = _raw(url, "/v1/leases/1/actions", headers(), b'{"action": "suspend"}')
    assert tampered.status_code == 401
    assert _raw(url, "/v1/leases/1", {}).status_code == 401
    other_agent = headers(agent="0x" + "99" * 20)
    assert _raw(url, "/v1/leases/1/actions", other_agent, body).status_code == 401
    big = b"{" + b" " * (70 * 1024) + b"}"
    assert _raw(url, "/v1/leases/1/actions", headers(body=big), big).status_code == 413
    bad = b'{"action": "format-disk"}'
    assert _raw(url, "/v1/leases/1/actions", headers(body=bad), bad).status_code == 422


def test_openapi_documents_the_paths_and_the_signature_headers(
    server: tuple[str, FakeDriver],
) -> None:
    url, _ = server
    doc = httpx.get(url + "/openapi.json").json()
    assert {"/v1/agent", "/v1/leases/{rental_id}", "/v1/leases/{rental_id}/credentials"} <= set(
        doc["paths"]
    )
    schemes = doc["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {
        "X-PV-Address", "X-PV-Timestamp", "X-PV-Nonce", "X-PV-Signature",
    }  # fmt: skip
    assert doc["paths"]["/v1/leases/{rental_id}"]["get"]["security"]
