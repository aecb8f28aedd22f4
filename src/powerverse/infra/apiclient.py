"""A client of the agent API that signs every request (for the CLI, the SDK and tests)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel

from powerverse.infra.api import (
    AgentInfo,
    EncryptedCredentials,
    Health,
    LeaseInfo,
    LoginCredentials,
    Usage,
)
from powerverse.infra.attestation import SignedReport
from powerverse.infra.auth import sign_request
from powerverse.infra.challenge import Challenge
from powerverse.infra.credentials import decrypt_credentials
from powerverse.infra.exceptions import AuthError, InfraError

__all__ = ["AgentApiError", "AgentClient"]

_M = TypeVar("_M", bound=BaseModel)


class AgentApiError(InfraError):
    """The agent refused a request; ``status`` is the HTTP status, ``detail`` its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the agent answered {status}: {detail}")
        self.status = status
        self.detail = detail


class AgentClient:
    """Signed calls to one agent, as one account.

    The agent's chain id and address (the signing domain) come from ``GET /v1/agent`` on first
    use; pass ``agent_address`` (and ``chain_id``), e.g. from the chain, to refuse an endpoint
    that answers as another agent.
    """

    def __init__(
        self,
        base_url: str,
        account: LocalAccount,
        *,
        agent_address: str | None = None,
        chain_id: int | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.account = account
        self._expected = (agent_address, chain_id)
        self._domain: tuple[str, int] | None = None
        self._clock = clock
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    # ------------------------------------------------------------------ plumbing

    def domain(self) -> tuple[str, int]:
        """The agent's address and chain id (what requests are signed for)."""
        if self._domain is None:
            info = self.agent()
            address, chain_id = self._expected
            if address is not None and address.lower() != info.address.lower():
                raise AuthError(
                    f"{self.http.base_url} answers as agent {info.address}, not {address}"
                )
            if chain_id is not None and chain_id != info.chain_id:
                raise AuthError(
                    f"{self.http.base_url} serves chain {info.chain_id}, not chain {chain_id}"
                )
            self._domain = (info.address, info.chain_id)
        return self._domain

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        signed: bool = True,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request (JSON ``body``), signed unless ``signed`` is False; the response,
        or :class:`AgentApiError` for an error status."""
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        extensions = {} if timeout is None else {"timeout": httpx.Timeout(timeout).as_dict()}
        request = self.http.build_request(
            method, path, content=content, headers=headers, extensions=extensions
        )
        if signed:
            agent, chain_id = self.domain()
            request.headers.update(
                sign_request(
                    self.account,
                    chain_id=chain_id,
                    agent=agent,
                    method=request.method,
                    path=request.url.raw_path.decode("ascii"),
                    body=content,
                    clock=self._clock,
                )
            )
        response = self.http.send(request)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise AgentApiError(
                response.status_code, detail if isinstance(detail, str) else json.dumps(detail)
            )
        return response

    def _get(self, model: type[_M], method: str, path: str, **kw: Any) -> _M:
        return model.model_validate(self.request(method, path, **kw).json())

    # ------------------------------------------------------------------ endpoints

    def health(self) -> Health:
        """Whether the agent is up, and its clock."""
        return self._get(Health, "GET", "/v1/health", signed=False)

    def agent(self) -> AgentInfo:
        """The agent's public description."""
        return self._get(AgentInfo, "GET", "/v1/agent", signed=False)

    def lease(self, rental_id: int) -> LeaseInfo:
        """The caller's VM for ``rental_id``."""
        return self._get(LeaseInfo, "GET", f"/v1/leases/{rental_id}")

    def action(
        self, rental_id: int, action: Literal["reboot", "suspend", "resume"], *, hard: bool = False
    ) -> LeaseInfo:
        """Reboot (``hard``: reset), suspend or resume the VM; its state afterwards."""
        body = {"action": action, "hard": hard}
        return self._get(LeaseInfo, "POST", f"/v1/leases/{rental_id}/actions", body=body)

    def console(self, rental_id: int, *, max_bytes: int = 65536) -> str:
        """The tail of the VM's serial console."""
        path = f"/v1/leases/{rental_id}/console?max_bytes={max_bytes}"
        return str(self.request("GET", path).json()["console"])

    def usage(self, rental_id: int) -> Usage:
        """The VM's resource use so far."""
        return self._get(Usage, "GET", f"/v1/leases/{rental_id}/usage")

    def encrypted_credentials(
        self, rental_id: int, *, to: Literal["signer", "did"] = "signer"
    ) -> EncryptedCredentials:
        """The login details as the agent sends them: encrypted to the signer or its DID key."""
        path = f"/v1/leases/{rental_id}/credentials?to={to}"
        return self._get(EncryptedCredentials, "GET", path)

    def credentials(self, rental_id: int, *, did_key: bytes | None = None) -> LoginCredentials:
        """The login details, decrypted with the account's key (or with ``did_key``, the private
        key of the caller's DID ``keyAgreement`` key, when given)."""
        sealed = self.encrypted_credentials(rental_id, to="signer" if did_key is None else "did")
        key = bytes(self.account.key) if did_key is None else did_key
        return LoginCredentials.model_validate(decrypt_credentials(key, sealed.ciphertext))

    def challenge(self, challenge: Challenge) -> SignedReport:
        """Send a verifier's signed challenge; the agent's signed report (unchecked: judge it
        with :func:`powerverse.infra.challenge.evaluate`). Waits until a little past the
        challenge's deadline."""
        wait = max(self.http.timeout.read or 30.0, challenge.deadline - self._clock() + 10.0)
        response = self.request(
            "POST", "/v1/challenges", body=challenge.to_json(), signed=False, timeout=wait
        )
        try:
            return SignedReport.from_json(response.json())
        except ValueError as exc:
            raise InfraError(f"the agent's answer is not a signed report: {exc}") from None
