"""The agent API over a real HTTP server (uvicorn on a real socket): only the lessee sees and
controls its VM; non-lessees, replays, expired signatures and tampered bodies are refused.

The VM driver is a small in-memory :class:`ComputeDriver` (this is the API layer; real VMs are in
the driver and end-to-end tests), and the lease directory an in-memory one. Server and clients
share a settable clock, so lease ends and signature windows are tested without waiting.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from coincurve import PrivateKey as CurveKey
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.infra.api import AgentIdentity, LeaseView, create_app
from powerverse.infra.apiclient import AgentApiError, AgentClient
from powerverse.infra.auth import MemoryNonceStore, sign_request
from powerverse.infra.credentials import RecipientKey, decrypt_credentials
from powerverse.infra.drivers.base import (
    ComputeDriver,
    InstanceInfo,
    InstanceSpec,
    InstanceState,
    InstanceUsage,
    VolumeAttachment,
)
from powerverse.infra.exceptions import (
    AuthError,
    DriverError,
    InstanceNotFound,
    InvalidInstanceState,
    UnsupportedOperation,
)

RENTER: LocalAccount = Account.from_key(b"\x05" * 32)
STRANGER: LocalAccount = Account.from_key(b"\x06" * 32)
AGENT = Account.from_key(b"\x07" * 32).address
CHAIN = 31337
START = 1_800_000_000
DID_SECRET = CurveKey(b"\x09" * 32)


class Clock:
    """The agent's (and the clients') settable clock."""

    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now


@dataclass
class Vm:
    state: InstanceState = InstanceState.RUNNING
    reboots: list[str] = field(default_factory=list)


class FakeDriver(ComputeDriver):
    """In-memory VMs: enough of a ComputeDriver for the API; a VM named ``broken`` fails."""

    name = "fake"

    def __init__(self) -> None:
        self.vms: dict[str, Vm] = {}

    def _vm(self, instance_id: str) -> Vm:
        if instance_id == "broken":
            raise DriverError("QMP socket closed")
        if instance_id not in self.vms:
            raise InstanceNotFound(f"no instance {instance_id}")
        return self.vms[instance_id]

    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        self.vms[spec.instance_id] = Vm()
        return self.info(spec.instance_id)

    def destroy(self, instance_id: str) -> None:
        self.vms.pop(instance_id, None)

    def suspend(self, instance_id: str) -> None:
        vm = self._vm(instance_id)
        if vm.state != InstanceState.RUNNING:
            raise InvalidInstanceState(f"{instance_id} is {vm.state.value}, not running")
        vm.state = InstanceState.PAUSED

    def resume(self, instance_id: str) -> None:
        vm = self._vm(instance_id)
        if vm.state != InstanceState.PAUSED:
            raise InvalidInstanceState(f"{instance_id} is {vm.state.value}, not paused")
        vm.state = InstanceState.RUNNING

    def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        self._vm(instance_id).reboots.append("hard" if hard else "soft")

    def resize(
        self, instance_id: str, *, vcpus: int | None = None, memory_mib: int | None = None
    ) -> InstanceInfo:
        raise UnsupportedOperation("resize")

    def console_log(self, instance_id: str, *, max_bytes: int = 65536) -> str:
        self._vm(instance_id)
        return ("boot log " * 100)[-max_bytes:]

    def info(self, instance_id: str) -> InstanceInfo:
        vm = self._vm(instance_id)
        return InstanceInfo(
            instance_id=instance_id,
            state=vm.state,
            vcpus=1,
            memory_mib=256,
            accel="tcg",
            ssh_host="127.0.0.1",
            ssh_port=2201,
        )

    def usage(self, instance_id: str) -> InstanceUsage:
        self._vm(instance_id)
        return InstanceUsage(
            instance_id=instance_id,
            cpu_seconds=1.5,
            memory_rss_bytes=1 << 20,
            disk_read_bytes=10,
            disk_write_bytes=20,
            net_rx_bytes=30,
            net_tx_bytes=40,
            uptime_seconds=5.0,
        )

    def list_instances(self) -> list[str]:
        return sorted(self.vms)

    def adopt(self) -> list[str]:
        return self.list_instances()

    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        raise UnsupportedOperation("volumes")

    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        raise UnsupportedOperation("volumes")

    def snapshot(self, instance_id: str, target: Path) -> Path:
        raise UnsupportedOperation("snapshot")


class Leases:
    """An in-memory lease directory."""

    def __init__(self) -> None:
        self.items: dict[int, LeaseView] = {}

    def lease(self, rental_id: int) -> LeaseView | None:
        return self.items.get(rental_id)


class DidKeys:
    """The renter's DID document has a keyAgreement key; nobody else's has."""

    def encryption_key(self, address: str) -> RecipientKey | None:
        if address != RENTER.address:
            return None
        point = DID_SECRET.public_key.format(compressed=True)
        return RecipientKey(public_key=point, source="did", key_id=f"did:pv:{address}#enc")


@dataclass
class Agent:
    url: str
    clock: Clock
    driver: FakeDriver
    leases: Leases

    def client(self, account: LocalAccount = RENTER) -> AgentClient:
        return AgentClient(self.url, account, clock=self.clock)


def _lease(rental_id: int, **over: Any) -> LeaseView:
    lease = LeaseView(
        rental_id=rental_id,
        lessee=RENTER.address,
        instance_id=f"rental-{rental_id}",
        end=START + 3600,
        active=True,
        token_id=7,
        password="s3cret",
        host_key_fingerprint="SHA256:abcdef",
    )
    return replace(lease, **over)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Clock, FakeDriver, Leases]]:
    clock, driver, leases = Clock(), FakeDriver(), Leases()
    app = create_app(
        identity=AgentIdentity(
            chain_id=CHAIN, address=AGENT, resources=(7,), ssh_host="agent.example"
        ),
        leases=leases,
        driver=driver,
        nonces=MemoryNonceStore(clock),
        clock=clock,
        did_keys=DidKeys(),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield url, clock, driver, leases
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def agent(server: tuple[str, Clock, FakeDriver, Leases]) -> Agent:
    """The server, reset: clock at START, VMs rental-1..3 running, leases 1..4 (4 ended)."""
    url, clock, driver, leases = server
    clock.now = float(START)
    driver.vms = {f"rental-{i}": Vm() for i in (1, 2, 3)}
    leases.items = {
        1: _lease(1),
        2: _lease(2, lessee=STRANGER.address),
        3: _lease(3, end=START + 100),
        4: _lease(4, active=False),
        5: _lease(5, instance_id="broken"),
        6: _lease(6, instance_id="not-yet"),
    }
    return Agent(url, clock, driver, leases)


def _raw(
    agent: Agent,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    signed_path: str | None = None,
    signed_body: bytes | None = None,
    signed_agent: str = AGENT,
    signed_chain: int = CHAIN,
    timestamp: int | None = None,
) -> httpx.Response:
    """A request signed by hand; the ``signed_*`` arguments change what the signature covers."""
    auth = sign_request(
        RENTER,
        chain_id=signed_chain,
        agent=signed_agent,
        method=method,
        path=path if signed_path is None else signed_path,
        body=body if signed_body is None else signed_body,
        timestamp=timestamp,
        clock=agent.clock,
    )
    all_headers = auth | {"content-type": "application/json"} | (headers or {})
    return httpx.request(method, agent.url + path, content=body, headers=all_headers, timeout=10)


# ---------------------------------------------------------------------- the lessee


def test_public_endpoints_say_who_the_agent_is(agent: Agent) -> None:
    with agent.client() as client:
        assert client.health().time == START
        info = client.agent()
    assert (info.address, info.chain_id, info.resources, info.accel) == (AGENT, CHAIN, [7], "tcg")
    assert info.signing.domain.verifying_contract == AGENT
    assert info.signing.domain.chain_id == CHAIN and info.signing.max_skew_seconds == 300
    assert info.signing.headers == [
        "X-PV-Address",
        "X-PV-Timestamp",
        "X-PV-Nonce",
        "X-PV-Signature",
    ]


def test_the_lessee_sees_and_controls_its_vm(agent: Agent) -> None:
    with agent.client() as client:
        vm = client.lease(1)
        assert (vm.state, vm.token_id, vm.end, vm.instance_id) == (
            "running",
            7,
            START + 3600,
            "rental-1",
        )
        assert vm.ssh is not None
        assert (vm.ssh.host, vm.ssh.port, vm.ssh.user) == ("agent.example", 2201, "root")
        assert client.action(1, "suspend").state == "paused"
        assert agent.driver.vms["rental-1"].state == InstanceState.PAUSED
        with pytest.raises(AgentApiError, match="is paused, not running") as refused:
            client.action(1, "suspend")
        assert refused.value.status == 409
        assert client.action(1, "resume").state == "running"
        client.action(1, "reboot", hard=True)
        client.action(1, "reboot")
        assert agent.driver.vms["rental-1"].reboots == ["hard", "soft"]
        assert client.console(1, max_bytes=9) == "boot log "
        usage = client.usage(1)
        assert (usage.cpu_seconds, usage.net_tx_bytes, usage.uptime_seconds) == (1.5, 40, 5.0)


def test_credentials_open_only_with_the_renters_key(agent: Agent) -> None:
    with agent.client() as client:
        creds = client.credentials(1)
        assert creds.ssh is not None and (creds.ssh.host, creds.ssh.port) == ("agent.example", 2201)
        assert (creds.rental_id, creds.password, creds.host_key_fingerprint) == (
            1, "s3cret", "SHA256:abcdef",
        )  # fmt: skip
        sealed = client.encrypted_credentials(1)
    assert sealed.scheme == "ecies-secp256k1-aes256gcm" and sealed.recipient.source == "signer"
    renter_key = Account._keys.PrivateKey(bytes(RENTER.key)).public_key.to_compressed_bytes()
    assert sealed.recipient.public_key == "0x" + renter_key.hex()
    assert "s3cret" not in sealed.ciphertext
    with pytest.raises(AuthError):
        decrypt_credentials(bytes(STRANGER.key), sealed.ciphertext)
    assert decrypt_credentials(bytes(RENTER.key), sealed.ciphertext)["password"] == "s3cret"


def test_credentials_to_the_renters_did_key(agent: Agent) -> None:
    with agent.client() as client:
        sealed = client.encrypted_credentials(1, to="did")
        assert sealed.recipient.source == "did"
        assert sealed.recipient.key_id == f"did:pv:{RENTER.address}#enc"
        with pytest.raises(AuthError):
            decrypt_credentials(bytes(RENTER.key), sealed.ciphertext)
        assert client.credentials(1, did_key=DID_SECRET.secret).password == "s3cret"
    agent.leases.items[2] = _lease(2, lessee=STRANGER.address, instance_id="rental-2")
    refused = pytest.raises(AgentApiError, match="no EcdsaSecp256k1VerificationKey2019")
    with agent.client(STRANGER) as stranger, refused as info:  # lessee of 2, without a DID key
        stranger.encrypted_credentials(2, to="did")
    assert info.value.status == 409


# ---------------------------------------------------------------------- everyone else


def test_a_non_lessee_is_refused_everything(agent: Agent) -> None:
    with agent.client(STRANGER) as stranger:
        for call in (
            lambda: stranger.lease(1),
            lambda: stranger.action(1, "reboot"),
            lambda: stranger.console(1),
            lambda: stranger.usage(1),
            lambda: stranger.credentials(1),
        ):
            with pytest.raises(AgentApiError, match="not the lessee of rental 1") as info:
                call()
            assert info.value.status == 403
    assert agent.driver.vms["rental-1"].reboots == []


@pytest.mark.parametrize(
    ("rental", "status", "why"),
    [
        (99, 404, "serves no rental 99"),
        (4, 410, "rental 4 has ended"),
        (6, 409, "not running on this host \\(yet\\)"),
        (5, 502, "QMP socket closed"),
    ],
)
def test_unknown_ended_missing_and_failing(
    agent: Agent, rental: int, status: int, why: str
) -> None:
    with agent.client() as client, pytest.raises(AgentApiError, match=why) as info:
        client.lease(rental)
    assert info.value.status == status


def test_a_lease_after_its_end_is_gone(agent: Agent) -> None:
    with agent.client() as client:
        assert client.lease(3).state == "running"
        agent.clock.now = START + 100  # the lease's end; the client signs with this clock too
        with pytest.raises(AgentApiError, match="ended at 2027-01-15T08:01:40Z") as info:
            client.lease(3)
        assert info.value.status == 410
        assert client.lease(1).state == "running"  # a longer lease is still served


def test_replayed_expired_tampered_and_unsigned_requests_get_401(agent: Agent) -> None:
    body = b'{"action":"reboot"}'
    path = "/v1/leases/1/actions"
    first = _raw(agent, "POST", path, body=body)
    assert first.status_code == 200
    replay = httpx.post(agent.url + path, content=body, headers=dict(first.request.headers))
    assert replay.status_code == 401 and "replayed request" in replay.json()["detail"]
    expired = _raw(agent, "POST", path, body=body, timestamp=START - 3600)
    assert expired.status_code == 401 and "expired signature" in expired.json()["detail"]
    future = _raw(agent, "POST", path, body=body, timestamp=START + 3600)
    assert future.status_code == 401 and "from the future" in future.json()["detail"]
    tampered = _raw(agent, "POST", path, body=b'{"action":"suspend"}', signed_body=body)
    assert tampered.status_code == 401 and "changed after signing" in tampered.json()["detail"]
    other_path = _raw(agent, "POST", "/v1/leases/3/actions", body=body, signed_path=path)
    assert other_path.status_code == 401
    foreign = _raw(agent, "POST", path, body=body, signed_agent="0x" + "99" * 20)
    assert foreign.status_code == 401 and "another agent" in foreign.json()["detail"]
    other_chain = _raw(agent, "POST", path, body=body, signed_chain=1)
    assert other_chain.status_code == 401
    unsigned = httpx.get(agent.url + "/v1/leases/1")
    assert unsigned.status_code == 401 and "missing header" in unsigned.json()["detail"]
    assert unsigned.headers["www-authenticate"].startswith("PV-EIP712")
    malformed = _raw(agent, "GET", "/v1/leases/1", headers={"X-PV-Nonce": "0x12"})
    assert malformed.status_code == 401 and "malformed X-PV-Nonce" in malformed.json()["detail"]
    assert agent.driver.vms["rental-1"].state == InstanceState.RUNNING  # nothing got through
    assert agent.driver.vms["rental-1"].reboots == ["soft"]


def test_duplicate_signature_headers_are_refused(agent: Agent) -> None:
    headers = sign_request(
        RENTER, chain_id=CHAIN, agent=AGENT, method="GET", path="/v1/leases/1", clock=agent.clock
    )
    pairs = [*headers.items(), ("X-PV-Address", STRANGER.address)]
    response = httpx.get(agent.url + "/v1/leases/1", headers=pairs)
    assert response.status_code == 401 and "more than once" in response.json()["detail"]


def test_the_signature_covers_the_path_as_sent(agent: Agent) -> None:
    """Percent-encoding is signed as it is on the wire, and the query string is covered."""
    assert _raw(agent, "GET", "/v1/leases/%31").status_code == 200
    decoded = _raw(agent, "GET", "/v1/leases/%31", signed_path="/v1/leases/1")
    assert decoded.status_code == 401
    console = "/v1/leases/1/console?max_bytes="
    query = _raw(agent, "GET", console + "5", signed_path=console + "500")
    assert query.status_code == 401
    assert _raw(agent, "GET", "/v1/leases/1/console?max_bytes=5").json() == {"console": " log "}


def test_oversized_bodies_get_413(agent: Agent) -> None:
    big = b'{"action":"reboot","pad":"' + b" " * (70 * 1024) + b'"}'
    declared = _raw(agent, "POST", "/v1/leases/1/actions", body=big)
    assert declared.status_code == 413 and "larger than 65536" in declared.json()["detail"]
    headers = sign_request(
        RENTER, chain_id=CHAIN, agent=AGENT, method="POST", path="/v1/leases/1/actions",
        body=big, clock=agent.clock,
    )  # fmt: skip
    chunks = (big[i : i + 8192] for i in range(0, len(big), 8192))  # no content-length: chunked
    streamed = httpx.post(agent.url + "/v1/leases/1/actions", content=chunks, headers=headers)
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert agent.driver.vms["rental-1"].reboots == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/leases/1/actions", b'{"action":"format-disk"}'),
        ("POST", "/v1/leases/1/actions", b'{"action":"reboot","force":true}'),
        ("POST", "/v1/leases/1/actions", b'{"action":'),
        ("POST", "/v1/leases/1/actions", b""),
        ("GET", "/v1/leases/1/console?max_bytes=0", b""),
        ("GET", "/v1/leases/1/console?max_bytes=lots", b""),
        ("GET", "/v1/leases/1/credentials?to=everyone", b""),
        ("GET", "/v1/leases/one", b""),
    ],
)
def test_malformed_requests_get_422(agent: Agent, method: str, path: str, body: bytes) -> None:
    response = _raw(agent, method, path, body=body)
    assert response.status_code == 422, response.text
    assert agent.driver.vms["rental-1"].reboots == []


def test_the_client_refuses_an_endpoint_answering_as_another_agent(agent: Agent) -> None:
    client = AgentClient(agent.url, RENTER, agent_address="0x" + "99" * 20, clock=agent.clock)
    with client, pytest.raises(AuthError, match=f"answers as agent {AGENT}"):
        client.lease(1)
    other_chain = AgentClient(agent.url, RENTER, chain_id=1)
    with other_chain, pytest.raises(AuthError, match="serves chain 31337, not chain 1"):
        other_chain.lease(1)
    pinned = AgentClient(agent.url, RENTER, agent_address=AGENT, chain_id=CHAIN, clock=agent.clock)
    with pinned:
        assert pinned.lease(1).rental_id == 1


# ---------------------------------------------------------------------- the document


def test_openapi_lists_the_paths_and_the_signature_scheme(agent: Agent) -> None:
    doc = httpx.get(agent.url + "/openapi.json").json()
    lease_paths = {
        "/v1/leases/{rental_id}": "get",
        "/v1/leases/{rental_id}/actions": "post",
        "/v1/leases/{rental_id}/console": "get",
        "/v1/leases/{rental_id}/usage": "get",
        "/v1/leases/{rental_id}/credentials": "get",
    }
    assert set(doc["paths"]) == {"/v1/health", "/v1/agent", "/v1/challenges", *lease_paths}
    schemes = doc["components"]["securitySchemes"]
    headers = ["X-PV-Address", "X-PV-Timestamp", "X-PV-Nonce", "X-PV-Signature"]
    assert {k: (v["type"], v["in"], v["name"]) for k, v in schemes.items()} == {
        h: ("apiKey", "header", h) for h in headers
    }
    for path, method in lease_paths.items():
        operation = doc["paths"][path][method]
        assert operation["security"] == [{h: [] for h in headers}]  # all four, together
        assert {"401", "403", "404", "410"} <= set(operation["responses"])
    for public in ("/v1/health", "/v1/agent"):
        assert "security" not in doc["paths"][public]["get"]
    lease_schema = doc["components"]["schemas"]["LeaseInfo"]["properties"]
    assert {"rentalId", "instanceId", "ssh", "end"} <= set(lease_schema)
    plaintext = doc["components"]["schemas"]["LoginCredentials"]["properties"]
    assert {"ssh", "password", "hostKeyFingerprint"} <= set(plaintext)
    assert plaintext["ssh"]["anyOf"][0] == {"$ref": "#/components/schemas/SshEndpoint"}
