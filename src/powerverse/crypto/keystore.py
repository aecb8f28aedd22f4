"""Password-encrypted account keys on disk: Web3 Secret Storage v3 files, as geth writes them."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_keyfile.exceptions import EthKeyfileValueError
from eth_keyfile.keyfile import create_keyfile_json, decode_keyfile_json

from powerverse.crypto.exceptions import InvalidAddress, KeystoreError
from powerverse.crypto.keys import (
    address_of,
    generate_private_key,
    parse_address,
    to_checksum,
    validate_private_key,
)

__all__ = [
    "SCRYPT_N",
    "Keystore",
    "KeystoreEntry",
    "default_keystore_dir",
    "pv_home",
]

# geth's "standard" scrypt cost (n=2^18, r=8, p=1: about 256 MiB and a second per key).
SCRYPT_N = 1 << 18

_log = logging.getLogger(__name__)


def pv_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return PowerVerse's data directory: $PV_HOME, else ~/.powerverse."""
    env = os.environ if environ is None else environ
    return Path(env.get("PV_HOME") or "~/.powerverse").expanduser()


def default_keystore_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the default keystore directory, $PV_HOME/keystore."""
    return pv_home(environ) / "keystore"


@dataclass(frozen=True)
class KeystoreEntry:
    """One key file in a keystore: the account's 20-byte address and the file's path."""

    address: bytes
    path: Path

    @property
    def checksum(self) -> str:
        """The EIP-55 form of the address."""
        return to_checksum(self.address)


class Keystore:
    """A directory of v3 key files, one per account, each encrypted with its own password."""

    def __init__(
        self,
        directory: Path,
        *,
        scrypt_n: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Use `directory` (created on first write); scrypt_n None means SCRYPT_N."""
        self.directory = Path(directory)
        self._scrypt_n = scrypt_n
        self._clock = clock

    def new(self, password: str) -> bytes:
        """Create a random account, store it encrypted with password, return its address."""
        return self.import_key(generate_private_key(), password)

    def import_key(self, private_key: bytes, password: str) -> bytes:
        """Store an existing private key encrypted with password; refuse one already present."""
        private_key = validate_private_key(private_key)
        address = address_of(private_key)
        existing = self.find(address)
        if existing is not None:
            raise KeystoreError(
                f"account {to_checksum(address)} is already in the keystore ({existing.path})"
            )
        scrypt_n = SCRYPT_N if self._scrypt_n is None else self._scrypt_n
        document = create_keyfile_json(
            private_key, password.encode(), version=3, kdf="scrypt", iterations=scrypt_n
        )
        # geth writes lowercase hex addresses; eth-keyfile writes the checksum form.
        document["address"] = address.hex()
        self._write(self._file_name(address), document)
        return address

    def list(self) -> list[KeystoreEntry]:
        """Return the key files in the directory, oldest first; other files are skipped."""
        if not self.directory.is_dir():
            return []
        entries = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            address = _address_in(path)
            if address is None:
                _log.warning("skipping %s: not a v3 key file with an address", path)
                continue
            entries.append(KeystoreEntry(address=address, path=path))
        return entries

    def find(self, address: bytes) -> KeystoreEntry | None:
        """Return the entry holding address, or None."""
        address = bytes(address)
        return next((e for e in self.list() if e.address == address), None)

    def unlock(self, address: bytes, password: str) -> bytes:
        """Return the private key of address, decrypted with password."""
        entry = self.find(address)
        if entry is None:
            raise KeystoreError(f"no key for {to_checksum(address)} in {self.directory}")
        try:
            document = json.loads(entry.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise KeystoreError(f"cannot read key file {entry.path}: {err}") from err
        try:
            private_key = decode_keyfile_json(document, password.encode())
        except EthKeyfileValueError as err:  # eth-keyfile's only one here: "MAC mismatch"
            raise KeystoreError(f"wrong password for {to_checksum(address)}") from err
        except (KeyError, TypeError, ValueError, NotImplementedError) as err:
            raise KeystoreError(f"key file {entry.path} is malformed: {err!r}") from err
        if address_of(private_key) != bytes(address):
            raise KeystoreError(f"key file {entry.path} holds a key for another address")
        return bytes(private_key)

    def _file_name(self, address: bytes) -> str:
        """Return geth's file name: UTC--<ISO 8601 time, ':' as '-'>--<address hex>."""
        now = self._clock().astimezone(UTC)
        stamp = now.strftime("%Y-%m-%dT%H-%M-%S") + f".{now.microsecond * 1000:09d}Z"
        return f"UTC--{stamp}--{address.hex()}"

    def _write(self, name: str, document: dict[str, Any]) -> Path:
        """Write document to name with mode 0600, atomically (temp file then rename)."""
        final = self.directory / name
        temp = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            raise KeystoreError(f"cannot write key file in {self.directory}: {err}") from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except OSError as err:
            temp.unlink(missing_ok=True)
            raise KeystoreError(f"cannot write key file {final}: {err}") from err
        return final


def _address_in(path: Path) -> bytes | None:
    """Return the address a v3 key file names, or None if the file is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("version") != 3:
        return None
    text = document.get("address")
    if not isinstance(text, str):
        return None
    try:
        return parse_address(text)
    except InvalidAddress:
        return None
