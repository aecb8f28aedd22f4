"""The agent's REST API (FastAPI, OpenAPI at ``/openapi.json``): lessees see and control their VMs.

Public: ``GET /v1/health``, ``GET /v1/agent``. Everything under ``/v1/leases/{rentalId}`` needs a
signed request (:mod:`powerverse.infra.auth`) from the rental's current lessee:

- ``GET  /v1/leases/{id}``             the VM: state, shape, SSH endpoint, lease end
- ``POST /v1/leases/{id}/actions``     ``{"action": "reboot" | "suspend" | "resume"}``
- ``GET  /v1/leases/{id}/console``     the tail of the serial console (``?max_bytes=``)
- ``GET  /v1/leases/{id}/usage``       CPU, memory, disk use so far
- ``GET  /v1/leases/{id}/credentials`` SSH endpoint and user, ECIES-encrypted to the caller

Status codes: 401 bad, expired, replayed or foreign signature; 403 signed by someone who is
not the lessee; 404 unknown rental; 410 the lease has ended; 409 the VM is not in a state for
that; 413 body too large; 422 malformed body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from powerverse.infra.auth import NonceStore, Verified, verify_request
from powerverse.infra.credentials import encrypt_credentials
from powerverse.infra.drivers.base import ComputeDriver
from powerverse.infra.exceptions import (
    AuthError,
    DriverError,
    InstanceNotFound,
    InvalidInstanceState,
)

__all__ = ["MAX_BODY", "AgentIdentity", "LeaseDirectory", "LeaseView", "create_app"]

MAX_BODY = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class AgentIdentity:
    """Who the agent is (requests are signed for this chain and address)."""

    chain_id: int
    address: str
    version: str = "1"
    accel: str = "tcg"
    resources: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LeaseView:
    """A rental as the API needs it."""

    rental_id: int
    lessee: str
    instance_id: str
    end: int  # unix seconds; 0 while not started
    active: bool  # False once the rental ended


class LeaseDirectory(Protocol):
    """Rentals served by this agent (the daemon answers from its state and the chain)."""

    def lease(self, rental_id: int) -> LeaseView | None:
        """The rental, or None if this agent does not serve it."""
        ...


class Action(BaseModel):
    """A control action on the lessee's VM."""

    action: Literal["reboot", "suspend", "resume"]
    hard: bool = False


# Documented in the OpenAPI document as the security scheme of the lease endpoints.
_SCHEMES = [
    APIKeyHeader(name=h, scheme_name=h, description=d, auto_error=False)
    for h, d in (
        ("X-PV-Address", "the signer's address"),
        ("X-PV-Timestamp", "unix seconds when signed"),
        ("X-PV-Nonce", "32 random bytes, 0x-hex, never reused"),
        ("X-PV-Signature", "EIP-712 signature of the request (see powerverse.infra.auth)"),
    )
]


def create_app(
    *,
    identity: AgentIdentity,
    leases: LeaseDirectory,
    driver: ComputeDriver,
    nonces: NonceStore,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The API application for one agent."""
    app = FastAPI(
        title="PowerVerse agent API",
        version=identity.version,
        description=__doc__,
    )

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Any]) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        return await call_next(request)

    async def caller(
        request: Request,
        _a: str | None = Depends(_SCHEMES[0]),
        _b: str | None = Depends(_SCHEMES[1]),
        _c: str | None = Depends(_SCHEMES[2]),
        _d: str | None = Depends(_SCHEMES[3]),
    ) -> Verified:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"body larger than {MAX_BODY} bytes")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            return verify_request(
                dict(request.headers),
                chain_id=identity.chain_id,
                agent=identity.address,
                method=request.method,
                path=path,
                body=body,
                nonces=nonces,
                clock=clock,
            )
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None

    def lessee_lease(rental_id: int, who: Verified) -> LeaseView:
        lease = leases.lease(rental_id)
        if lease is None:
            raise HTTPException(404, f"this agent serves no rental {rental_id}")
        if lease.lessee.lower() != who.address.lower():
            raise HTTPException(403, f"{who.address} is not the lessee of rental {rental_id}")
        if not lease.active or (lease.end and clock() >= lease.end):
            raise HTTPException(410, f"rental {rental_id} has ended")
        return lease

    def vm_info(lease: LeaseView) -> dict[str, Any]:
        try:
            info = driver.info(lease.instance_id)
        except InstanceNotFound:
            raise HTTPException(409, "the VM is not running on this host (yet)") from None
        return {
            "rentalId": lease.rental_id,
            "instanceId": info.instance_id,
            "state": info.state.value,
            "vcpus": info.vcpus,
            "memoryMib": info.memory_mib,
            "accel": info.accel,
            "ssh": None
            if info.ssh_port is None
            else {"host": info.ssh_host, "port": info.ssh_port, "user": "root"},
            "end": lease.end,
        }

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        """Liveness of the agent."""
        return {"ok": True, "time": int(clock())}

    @app.get("/v1/agent")
    def agent() -> dict[str, Any]:
        """Who this agent is and what it serves."""
        return {
            "address": identity.address,
            "chainId": identity.chain_id,
            "version": identity.version,
            "accel": identity.accel,
            "resources": list(identity.resources),
        }

    @app.get("/v1/leases/{rental_id}")
    def lease_info(rental_id: int, who: Verified = Depends(caller)) -> dict[str, Any]:
        """The lessee's VM."""
        return vm_info(lessee_lease(rental_id, who))

    @app.post("/v1/leases/{rental_id}/actions")
    def act(rental_id: int, action: Action, who: Verified = Depends(caller)) -> dict[str, Any]:
        """Reboot, suspend or resume the lessee's VM."""
        lease = lessee_lease(rental_id, who)
        try:
            if action.action == "reboot":
                driver.reboot(lease.instance_id, hard=action.hard)
            elif action.action == "suspend":
                driver.suspend(lease.instance_id)
            else:
                driver.resume(lease.instance_id)
        except (InvalidInstanceState, InstanceNotFound) as exc:
            raise HTTPException(409, str(exc)) from None
        except DriverError as exc:
            raise HTTPException(502, str(exc)) from None
        return vm_info(lease)

    @app.get("/v1/leases/{rental_id}/console")
    def console(
        rental_id: int, max_bytes: int = 65536, who: Verified = Depends(caller)
    ) -> dict[str, Any]:
        """The tail of the VM's serial console."""
        lease = lessee_lease(rental_id, who)
        if not 1 <= max_bytes <= 1 << 20:
            raise HTTPException(422, "max_bytes must be between 1 and 1048576")
        try:
            return {"console": driver.console_log(lease.instance_id, max_bytes=max_bytes)}
        except InstanceNotFound:
            raise HTTPException(409, "the VM is not running on this host (yet)") from None

    @app.get("/v1/leases/{rental_id}/usage")
    def usage(rental_id: int, who: Verified = Depends(caller)) -> dict[str, Any]:
        """CPU, memory and disk use of the VM so far."""
        lease = lessee_lease(rental_id, who)
        try:
            u = driver.usage(lease.instance_id)
        except InstanceNotFound:
            raise HTTPException(409, "the VM is not running on this host (yet)") from None
        return {
            "cpuSeconds": u.cpu_seconds,
            "memoryRssBytes": u.memory_rss_bytes,
            "diskReadBytes": u.disk_read_bytes,
            "diskWriteBytes": u.disk_write_bytes,
            "uptimeSeconds": u.uptime_seconds,
        }

    @app.get("/v1/leases/{rental_id}/credentials")
    def credentials(rental_id: int, who: Verified = Depends(caller)) -> dict[str, Any]:
        """How to log in, encrypted to the caller's key."""
        info = vm_info(lessee_lease(rental_id, who))
        secret = {"ssh": info["ssh"], "instanceId": info["instanceId"], "rentalId": rental_id}
        return {"ciphertext": encrypt_credentials(who.public_key, secret)}

    return app
