"""Read the committed artifacts of the system contracts (ABI, bytecode, deployed bytecode)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from powerverse.contracts.exceptions import ContractsError

__all__ = ["ARTIFACTS_DIR", "SOURCES_DIR", "CompiledContract", "artifact_names", "load_artifact"]

ARTIFACTS_DIR = Path(__file__).with_name("artifacts")
"""Where `pv contracts build` writes one JSON artifact per system contract."""
SOURCES_DIR = Path(__file__).with_name("src")
"""The Solidity sources of the system contracts."""


@dataclass(frozen=True)
class CompiledContract:
    """One committed artifact."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    deployed_bytecode: bytes

    def constructor_inputs(self) -> list[dict[str, Any]]:
        """The constructor's ABI inputs (empty when it takes none)."""
        for item in self.abi:
            if item.get("type") == "constructor":
                return list(item.get("inputs", []))
        return []


def artifact_names(directory: Path = ARTIFACTS_DIR) -> list[str]:
    """Names of every contract with an artifact in `directory`."""
    return sorted(p.stem for p in directory.glob("*.json"))


@cache
def _load(path: Path) -> CompiledContract:
    try:
        doc = json.loads(path.read_text())
        return CompiledContract(
            name=str(doc["contractName"]),
            abi=tuple(doc["abi"]),
            bytecode=bytes.fromhex(str(doc["bytecode"]).removeprefix("0x")),
            deployed_bytecode=bytes.fromhex(str(doc["deployedBytecode"]).removeprefix("0x")),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractsError(f"cannot read the artifact {path}: {exc}") from exc


def load_artifact(name: str, directory: Path = ARTIFACTS_DIR) -> CompiledContract:
    """The artifact of contract `name`; ContractsError if it is missing or malformed."""
    path = directory / f"{name}.json"
    if not path.is_file():
        raise ContractsError(
            f"no artifact for contract {name!r} in {directory}; build with `pv contracts build`"
        )
    return _load(path)
