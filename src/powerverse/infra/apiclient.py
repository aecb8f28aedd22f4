"""A client of the agent API that signs every request (for the CLI, the SDK and tests)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from powerverse.infra.auth import sign_request
from powerverse.infra.credentials import decrypt_credentials

__all__ = ["AgentApiError", "AgentClient"]


class AgentApiError(Exception):
    """The agent refused a request; ``status`` is the HTTP status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class AgentClient:
    """Signed calls to one agent, as one account."""

    def __init__(self, base_url: str, account: LocalAccount, *, timeout: float = 30.0) -> None:
        self.account = account
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        info = self.agent()
        self.chain_id = int(info["chainId"])
        self.agent_address = str(info["address"])

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _call(self, method: str, path: str, body: Any = None, *, signed: bool = True) -> Any:
        raw = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        if signed:
            headers |= sign_request(
                self.account,
                chain_id=self.chain_id,
                agent=self.agent_address,
                method=method,
                path=path,
                body=raw,
            )
        response = self.http.request(method, path, content=raw, headers=headers)
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail"))
            except ValueError:
                detail = response.text
            raise AgentApiError(response.status_code, detail)
        return response.json()

    def agent(self) -> dict[str, Any]:
        """The agent's public description."""
        doc: dict[str, Any] = self._call("GET", "/v1/agent", signed=False)
        return doc

    def lease(self, rental_id: int) -> dict[str, Any]:
        """The caller's VM for ``rental_id``."""
        doc: dict[str, Any] = self._call("GET", f"/v1/leases/{rental_id}")
        return doc

    def action(self, rental_id: int, action: str, *, hard: bool = False) -> dict[str, Any]:
        """Reboot, suspend or resume the VM."""
        body = {"action": action, "hard": hard}
        doc: dict[str, Any] = self._call("POST", f"/v1/leases/{rental_id}/actions", body)
        return doc

    def console(self, rental_id: int, max_bytes: int = 65536) -> str:
        """The tail of the VM's console."""
        doc = self._call("GET", f"/v1/leases/{rental_id}/console?max_bytes={max_bytes}")
        return str(doc["console"])

    def usage(self, rental_id: int) -> dict[str, Any]:
        """Resource use of the VM."""
        doc: dict[str, Any] = self._call("GET", f"/v1/leases/{rental_id}/usage")
        return doc

    def credentials(self, rental_id: int) -> dict[str, Any]:
        """The login details, decrypted with the caller's key."""
        doc = self._call("GET", f"/v1/leases/{rental_id}/credentials")
        return decrypt_credentials(bytes(self.account.key), str(doc["ciphertext"]))
