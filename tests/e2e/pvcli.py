"""Run the real `pv` executable as a subprocess against one node and read its `--json` output."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from tests.e2e.nodeproc import PV_BIN, REPO_ROOT

EXIT_REFUSED = 1
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PvCli:
    """`pv ...` with PV_RPC_URL pointing at `rpc_url`; every call adds `--json`."""

    rpc_url: str

    def run(self, *args: str, signer: int | None = None) -> subprocess.CompletedProcess[str]:
        """Run `pv ARGS --json [--dev-account N]`; the completed process, whatever its status."""
        extra = ["--json", *(["--dev-account", str(signer)] if signer is not None else [])]
        env = {**os.environ, "PV_RPC_URL": self.rpc_url, "NO_COLOR": "1", "COLUMNS": "200"}
        return subprocess.run(
            [str(PV_BIN), *args, *extra],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )

    def ok(self, *args: str, signer: int | None = None) -> Any:
        """The JSON document of a command that must succeed (exit 0)."""
        done = self.run(*args, signer=signer)
        assert done.returncode == 0, _explain(args, done)
        return json.loads(done.stdout)

    def refused(self, *args: str, error: str, signer: int | None = None) -> dict[str, Any]:
        """The JSON refusal of a command the contract must refuse with custom error `error`."""
        done = self.run(*args, signer=signer)
        assert done.returncode == EXIT_REFUSED, _explain(args, done)
        doc: dict[str, Any] = json.loads(done.stdout)
        assert doc["error"] == error, doc
        return doc


def _explain(args: tuple[str, ...], done: subprocess.CompletedProcess[str]) -> str:
    return f"pv {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
