"""A validator's key file: its account key (fee recipient) and its ed25519 consensus seed.

The file is JSON, readable by its owner only::

    {"address": "0x...", "accountKey": "0x<32 bytes>", "consensusSeed": "0x<32 bytes>",
     "consensusPublicKey": "0x<32 bytes>"}
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

from powerverse.chain.exceptions import ChainError
from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.crypto.keys import address_of, to_checksum


class ValidatorKeyError(ChainError):
    """The validator key file is missing or malformed."""


@dataclass(frozen=True)
class ValidatorKey:
    """Account key plus consensus key of one validator."""

    account_key: bytes
    consensus: ConsensusKey

    @property
    def address(self) -> bytes:
        """The validator's account address (its blocks' fee recipient)."""
        return address_of(self.account_key)

    @classmethod
    def generate(cls) -> ValidatorKey:
        """Fresh random keys."""
        return cls(secrets.token_bytes(32), ConsensusKey.generate())

    @classmethod
    def from_label(cls, label: str) -> ValidatorKey:
        """Deterministic keys from a label (dev chains and tests only)."""
        return cls(
            keccak(text=f"powerverse account {label}"),
            ConsensusKey.from_seed(keccak(text=f"powerverse consensus {label}")),
        )

    def save(self, path: Path) -> None:
        """Write the key file with mode 0600."""
        doc = {
            "address": to_checksum(self.address),
            "accountKey": "0x" + self.account_key.hex(),
            "consensusSeed": "0x" + self.consensus.seed.hex(),
            "consensusPublicKey": "0x" + self.consensus.public_key.hex(),
        }
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle, indent=2)
            handle.write("\n")

    @classmethod
    def load(cls, path: Path) -> ValidatorKey:
        """Read a key file; a clear error names what is wrong."""
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValidatorKeyError(f"validator key file {path} does not exist") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidatorKeyError(f"cannot read validator key file {path}: {exc}") from None
        try:
            account_key = bytes.fromhex(str(doc["accountKey"]).removeprefix("0x"))
            seed = bytes.fromhex(str(doc["consensusSeed"]).removeprefix("0x"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidatorKeyError(
                f"validator key file {path} needs hex fields accountKey and consensusSeed ({exc})"
            ) from None
        if len(account_key) != 32 or len(seed) != 32:
            raise ValidatorKeyError(f"validator key file {path}: keys must be 32 bytes each")
        return cls(account_key, ConsensusKey.from_seed(seed))
