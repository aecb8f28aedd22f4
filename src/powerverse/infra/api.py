"""The agent's REST API (FastAPI; OpenAPI at ``/openapi.json``): lessees see and control their VMs.

Public: ``GET /v1/health``, ``GET /v1/agent`` (who the agent is, what it serves, and the EIP-712
domain requests are signed for). Everything under ``/v1/leases/{rental_id}`` needs a request
signed by the rental's current lessee (the ``X-PV-*`` headers, :mod:`powerverse.infra.auth`):

- ``GET  /v1/leases/{rental_id}``             the VM: state, shape, SSH endpoint, lease end
- ``POST /v1/leases/{rental_id}/actions``     ``{"action": "reboot" | "suspend" | "resume"}``
- ``GET  /v1/leases/{rental_id}/console``     the tail of the serial console (``?max_bytes=``)
- ``GET  /v1/leases/{rental_id}/usage``       CPU, memory, disk and network use so far
- ``GET  /v1/leases/{rental_id}/credentials`` how to log in, ECIES-encrypted to the caller's key
  (``?to=did``: to the caller's DID ``keyAgreement`` key instead)

Re-verification: ``POST /v1/challenges`` takes a verifier's signed challenge (its own
signature authenticates it, see :mod:`powerverse.infra.challenge`), runs the benchmarks with the
challenge's seed and answers with the agent's signed report; 401 a bad signature, 403 a verifier
or token the agent does not accept or sizes over its limits, 410 a passed deadline, 422 a
malformed challenge, 429 while another challenge runs, 501 when the agent takes none.

Status codes: 401 missing, malformed, expired, replayed or foreign signature; 403 signed by
someone who is not the rental's lessee; 404 a rental this agent does not serve; 410 the lease
has ended; 409 the VM is not in a state for that (or not running yet); 413 a body over
:data:`MAX_BODY` bytes; 422 a malformed body or parameter; 501 the host cannot do that;
502 the host failed to. Errors are ``{"detail": "<what was wrong>"}``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from powerverse.infra.attestation import (
    BadSignature,
    EvidenceError,
    MalformedEvidence,
    SignedReport,
)
from powerverse.infra.auth import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    HEADERS,
    MAX_SKEW,
    NonceStore,
    Verified,
    verify_request,
)
from powerverse.infra.challenge import Challenge, ChallengeExpired, ChallengeRefused
from powerverse.infra.credentials import (
    SCHEME,
    RecipientKey,
    compress_public_key,
    encrypt_credentials,
)
from powerverse.infra.drivers.base import ComputeDriver, InstanceInfo
from powerverse.infra.exceptions import (
    AuthError,
    DriverError,
    InstanceNotFound,
    InvalidInstanceState,
    UnsupportedOperation,
)

__all__ = [
    "MAX_BODY",
    "ActionRequest",
    "AgentIdentity",
    "AgentInfo",
    "ChallengeResponder",
    "ConsoleLog",
    "DidKeyDirectory",
    "EncryptedCredentials",
    "Health",
    "LeaseDirectory",
    "LeaseInfo",
    "LeaseView",
    "LoginCredentials",
    "SshEndpoint",
    "Usage",
    "create_app",
]

MAX_BODY: Final = 64 * 1024
"""Largest request body the API reads (bytes); larger ones get 413."""

MAX_CONSOLE: Final = 1 << 20


# ---------------------------------------------------------------------- what the agent plugs in


@dataclass(frozen=True, kw_only=True)
class AgentIdentity:
    """Who the agent is (requests are signed for this chain and address) and what it serves."""

    chain_id: int
    address: str
    version: str = "1"
    accel: str = "tcg"
    resources: tuple[int, ...] = ()
    ssh_host: str | None = None  # the host name renters reach SSH forwards at (None: the VM's)


@dataclass(frozen=True, kw_only=True)
class LeaseView:
    """A rental as the API needs it: its lessee, its end, and the instance serving it."""

    rental_id: int
    lessee: str
    instance_id: str
    end: int  # unix seconds; 0 while not started
    active: bool  # False once the rental ended (settled, refunded, terminated...)
    token_id: int | None = None  # the resource rented
    ssh_user: str = "root"
    password: str | None = None  # a generated login password, when the VM has one
    host_key_fingerprint: str | None = None  # the VM's SSH host key (``SHA256:…``), when known


class LeaseDirectory(Protocol):
    """Rentals served by this agent (the daemon answers from its state and the chain)."""

    def lease(self, rental_id: int) -> LeaseView | None:
        """Rental ``rental_id`` with its current lessee, or None if this agent does not serve it."""
        ...


class ChallengeResponder(Protocol):
    """Runs a re-verification challenge (the daemon: :func:`powerverse.infra.challenge.respond`
    with the agent's key, the hardware and the token's claimed parameters)."""

    def __call__(self, challenge: Challenge) -> SignedReport:
        """The signed report answering ``challenge`` (EvidenceError subclasses when refused)."""
        ...


class DidKeyDirectory(Protocol):
    """Encryption keys from DID documents (the daemon reads the DIDRegistry)."""

    def encryption_key(self, address: str) -> RecipientKey | None:
        """The ``keyAgreement`` key of ``did:pv:<address>``, or None when it has none."""
        ...


# ---------------------------------------------------------------------- wire models


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class Health(_Model):
    """The agent is up; its clock."""

    ok: bool
    time: int


class SigningDomain(_Model):
    """The EIP-712 domain of this agent's requests."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str


class Signing(_Model):
    """How to sign requests to this agent."""

    scheme: Literal["eip712"]
    primary_type: Literal["Request"]
    domain: SigningDomain
    headers: list[str]
    max_skew_seconds: int


class AgentInfo(_Model):
    """Who the agent is and what it serves."""

    address: str
    chain_id: int
    version: str
    accel: str
    resources: list[int]
    signing: Signing


class SshEndpoint(_Model):
    """Where to SSH into the VM."""

    host: str
    port: int
    user: str


class LeaseInfo(_Model):
    """The lessee's VM."""

    rental_id: int
    token_id: int | None
    instance_id: str
    state: str
    vcpus: int
    memory_mib: int
    accel: str
    ssh: SshEndpoint | None
    end: int


class ActionRequest(_Model):
    """A control action on the lessee's VM (``hard``: reset rather than ACPI reboot)."""

    action: Literal["reboot", "suspend", "resume"]
    hard: bool = False


class ConsoleLog(_Model):
    """The tail of the VM's serial console."""

    console: str


class Usage(_Model):
    """The VM's cumulative resource use."""

    cpu_seconds: float
    memory_rss_bytes: int
    disk_read_bytes: int
    disk_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    uptime_seconds: float


class Recipient(_Model):
    """The key credentials were encrypted to."""

    source: Literal["signer", "did"]
    public_key: str  # 0x-hex, 33 bytes compressed
    key_id: str | None


class EncryptedCredentials(_Model):
    """Login credentials, readable only with the recipient's private key: the ciphertext (format
    in :mod:`powerverse.infra.credentials`) holds a ``LoginCredentials`` JSON object."""

    scheme: Literal["ecies-secp256k1-aes256gcm"]
    ciphertext: str
    recipient: Recipient


class LoginCredentials(_Model):
    """The plaintext of :class:`EncryptedCredentials`."""

    rental_id: int
    instance_id: str
    ssh: SshEndpoint | None
    password: str | None = None
    host_key_fingerprint: str | None = None


class ErrorBody(BaseModel):
    """Why a request was refused."""

    detail: str


# ---------------------------------------------------------------------- edge plumbing


class _AgentApp(FastAPI):
    """FastAPI whose OpenAPI document requires the four signature headers together."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document; a signed operation's headers form one security requirement."""
        schema = super().openapi()
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                requirements = operation.get("security") if isinstance(operation, dict) else None
                if requirements:
                    operation["security"] = [{k: [] for req in requirements for k in req}]
        # The plaintext inside EncryptedCredentials, for clients that decrypt it.
        plain = LoginCredentials.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(plain.pop("$defs", {}))
        components["LoginCredentials"] = plain
        return schema


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than {self.limit} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await JSONResponse({"detail": too_large}, status_code=413)(scope, receive, send)
                return
        received = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, too_large)  # FastAPI answers it
            return message

        await self.app(scope, limited, send)


_SCHEMES = {
    h: APIKeyHeader(name=h, scheme_name=h, description=d, auto_error=False)
    for h, d in zip(
        HEADERS,
        (
            "The signer's address (0x + 40 hex digits).",
            "Unix seconds when the request was signed (decimal).",
            "32 fresh random bytes, 0x-hex; never reused.",
            "EIP-712 signature (0x + 130 hex digits) of Request{method, path, bodyHash, "
            "timestamp, nonce} in the domain of GET /v1/agent's signing.domain.",
        ),
        strict=True,
    )
}

_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why}
    for code, why in (
        (401, "missing, malformed, expired, replayed or foreign signature"),
        (403, "the signer is not the rental's lessee"),
        (404, "this agent serves no such rental"),
        (409, "the VM is not in a state for that, or not running yet"),
        (410, "the lease has ended"),
        (413, "request body too large"),
    )
}


def _target(request: Request) -> str:
    """The request target as received: raw path (percent-encoding kept), ``?`` and query."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def _driver_errors(rental_id: int) -> Iterator[None]:
    """Driver failures as HTTP errors (the edge: the driver knows nothing of HTTP)."""
    try:
        yield
    except InstanceNotFound:
        raise HTTPException(
            409, f"the VM of rental {rental_id} is not running on this host (yet); try again soon"
        ) from None
    except InvalidInstanceState as exc:
        raise HTTPException(409, f"rental {rental_id}: {exc}") from None
    except UnsupportedOperation as exc:
        raise HTTPException(501, f"this host cannot do that: {exc}") from None
    except DriverError as exc:
        raise HTTPException(502, f"the host failed on rental {rental_id}'s VM: {exc}") from None


# ---------------------------------------------------------------------- the app


def create_app(
    *,
    identity: AgentIdentity,
    leases: LeaseDirectory,
    driver: ComputeDriver,
    nonces: NonceStore,
    clock: Callable[[], float] = time.time,
    did_keys: DidKeyDirectory | None = None,
    challenges: ChallengeResponder | None = None,
    max_skew: int = MAX_SKEW,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The API application of one agent.

    ``clock`` (unix seconds) judges signature freshness and lease ends; ``nonces`` remembers used
    nonces (:class:`~powerverse.infra.auth.SqliteNonceStore` in the daemon); ``did_keys`` lets
    renters ask for credentials encrypted to their DID document's key; ``challenges`` answers
    verifiers' re-verification challenges (one at a time).
    """
    app = _AgentApp(title="PowerVerse agent API", version=identity.version, description=__doc__)
    app.add_middleware(_BodyLimit, limit=max_body)
    signing = Signing(
        scheme="eip712",
        primary_type="Request",
        domain=SigningDomain(
            name=DOMAIN_NAME,
            version=DOMAIN_VERSION,
            chain_id=identity.chain_id,
            verifying_contract=identity.address,
        ),
        headers=list(HEADERS),
        max_skew_seconds=max_skew,
    )

    async def caller(
        request: Request,
        _address: str | None = Depends(_SCHEMES[HEADERS[0]]),
        _timestamp: str | None = Depends(_SCHEMES[HEADERS[1]]),
        _nonce: str | None = Depends(_SCHEMES[HEADERS[2]]),
        _signature: str | None = Depends(_SCHEMES[HEADERS[3]]),
    ) -> Verified:
        body = await request.body()
        try:
            for header in HEADERS:
                if len(request.headers.getlist(header)) > 1:
                    raise AuthError(f"{header} given more than once")
            return await run_in_threadpool(
                verify_request,
                request.headers,
                chain_id=identity.chain_id,
                agent=identity.address,
                method=request.method,
                path=_target(request),
                body=body,
                nonces=nonces,
                clock=clock,
                max_skew=max_skew,
            )
        except AuthError as exc:
            raise HTTPException(
                401, str(exc), headers={"WWW-Authenticate": 'PV-EIP712 realm="powerverse-agent"'}
            ) from None

    def lessee_lease(rental_id: int, who: Verified) -> LeaseView:
        lease = leases.lease(rental_id)
        if lease is None:
            raise HTTPException(404, f"this agent serves no rental {rental_id}")
        if lease.lessee.lower() != who.address.lower():
            raise HTTPException(
                403,
                f"{who.address} is not the lessee of rental {rental_id}; only its current "
                "lessee may see or control its VM",
            )
        if not lease.active:
            raise HTTPException(410, f"rental {rental_id} has ended")
        if lease.end and clock() >= lease.end:
            raise HTTPException(410, f"rental {rental_id} ended at {_iso(lease.end)}")
        return lease

    def ssh_endpoint(lease: LeaseView, info: InstanceInfo) -> SshEndpoint | None:
        if info.ssh_port is None:
            return None
        host = identity.ssh_host or info.ssh_host or "127.0.0.1"
        return SshEndpoint(host=host, port=info.ssh_port, user=lease.ssh_user)

    def lease_info(lease: LeaseView) -> LeaseInfo:
        with _driver_errors(lease.rental_id):
            info = driver.info(lease.instance_id)
        return LeaseInfo(
            rental_id=lease.rental_id,
            token_id=lease.token_id,
            instance_id=info.instance_id,
            state=info.state.value,
            vcpus=info.vcpus,
            memory_mib=info.memory_mib,
            accel=info.accel,
            ssh=ssh_endpoint(lease, info),
            end=lease.end,
        )

    @app.get("/v1/health", tags=["public"])
    def health() -> Health:
        """Liveness of the agent, and its clock."""
        return Health(ok=True, time=int(clock()))

    @app.get("/v1/agent", tags=["public"])
    def agent() -> AgentInfo:
        """Who this agent is, what it serves, and how to sign requests to it."""
        return AgentInfo(
            address=identity.address,
            chain_id=identity.chain_id,
            version=identity.version,
            accel=identity.accel,
            resources=list(identity.resources),
            signing=signing,
        )

    challenge_lock = threading.Lock()

    @app.post(
        "/v1/challenges",
        tags=["verification"],
        responses={
            code: {"model": ErrorBody, "description": why}
            for code, why in (
                (401, "the challenge's signature is bad or not its verifier's"),
                (403, "a verifier or token this agent does not accept, or sizes over its limits"),
                (410, "the challenge's deadline has passed"),
                (429, "another challenge is running"),
                (501, "this agent takes no challenges"),
            )
        },
    )
    async def challenge(request: Request) -> JSONResponse:
        """Run a verifier's signed challenge; the answer is the agent's signed report."""
        if challenges is None:
            raise HTTPException(501, "this agent takes no re-verification challenges")
        try:
            parsed = Challenge.from_json(await request.body())
        except MalformedEvidence as exc:
            raise HTTPException(422, str(exc)) from None
        if not challenge_lock.acquire(blocking=False):
            raise HTTPException(429, "another challenge is running on this agent; try again")
        try:
            report = await run_in_threadpool(challenges, parsed)
        except BadSignature as exc:
            raise HTTPException(401, str(exc)) from None
        except ChallengeRefused as exc:
            raise HTTPException(403, str(exc)) from None
        except ChallengeExpired as exc:
            raise HTTPException(410, str(exc)) from None
        except EvidenceError as exc:
            raise HTTPException(422, str(exc)) from None
        finally:
            challenge_lock.release()
        return JSONResponse(report.to_json())

    router = APIRouter(prefix="/v1/leases/{rental_id}", tags=["leases"], responses=_REFUSALS)
    signed = Depends(caller)

    @router.get("")
    def lease(rental_id: int, who: Verified = signed) -> LeaseInfo:
        """The lessee's VM: state, shape, SSH endpoint, lease end."""
        return lease_info(lessee_lease(rental_id, who))

    @router.post("/actions")
    def act(rental_id: int, action: ActionRequest, who: Verified = signed) -> LeaseInfo:
        """Reboot, suspend or resume the lessee's VM."""
        current = lessee_lease(rental_id, who)
        with _driver_errors(rental_id):
            if action.action == "reboot":
                driver.reboot(current.instance_id, hard=action.hard)
            elif action.action == "suspend":
                driver.suspend(current.instance_id)
            else:
                driver.resume(current.instance_id)
        return lease_info(current)

    @router.get("/console")
    def console(
        rental_id: int,
        max_bytes: int = Query(65536, ge=1, le=MAX_CONSOLE),
        who: Verified = signed,
    ) -> ConsoleLog:
        """The tail of the VM's serial console."""
        current = lessee_lease(rental_id, who)
        with _driver_errors(rental_id):
            return ConsoleLog(console=driver.console_log(current.instance_id, max_bytes=max_bytes))

    @router.get("/usage")
    def usage(rental_id: int, who: Verified = signed) -> Usage:
        """CPU, memory, disk and network use of the VM so far."""
        current = lessee_lease(rental_id, who)
        with _driver_errors(rental_id):
            u = driver.usage(current.instance_id)
        return Usage(
            cpu_seconds=u.cpu_seconds,
            memory_rss_bytes=u.memory_rss_bytes,
            disk_read_bytes=u.disk_read_bytes,
            disk_write_bytes=u.disk_write_bytes,
            net_rx_bytes=u.net_rx_bytes,
            net_tx_bytes=u.net_tx_bytes,
            uptime_seconds=u.uptime_seconds,
        )

    @router.get("/credentials")
    def credentials(
        rental_id: int,
        to: Literal["signer", "did"] = Query(
            "signer", description="encrypt to the signer's key, or to its DID keyAgreement key"
        ),
        who: Verified = signed,
    ) -> EncryptedCredentials:
        """How to log in to the VM, encrypted to the caller's key."""
        current = lessee_lease(rental_id, who)
        recipient = recipient_key(who, to)
        info = lease_info(current)
        plain = LoginCredentials(
            rental_id=rental_id,
            instance_id=info.instance_id,
            ssh=info.ssh,
            password=current.password,
            host_key_fingerprint=current.host_key_fingerprint,
        )
        return EncryptedCredentials(
            scheme=SCHEME,
            ciphertext=encrypt_credentials(
                recipient.public_key, plain.model_dump(mode="json", by_alias=True)
            ),
            recipient=Recipient(
                source=recipient.source,
                public_key="0x" + recipient.public_key.hex(),
                key_id=recipient.key_id,
            ),
        )

    def recipient_key(who: Verified, to: str) -> RecipientKey:
        if to == "signer":
            return RecipientKey(public_key=compress_public_key(who.public_key), source="signer")
        found = None if did_keys is None else did_keys.encryption_key(who.address)
        if found is None:
            raise HTTPException(
                409,
                f"did:pv:{who.address} has no EcdsaSecp256k1VerificationKey2019 key for "
                "keyAgreement that this agent can find; add one, or ask with to=signer",
            )
        return found

    app.include_router(router)
    return app
