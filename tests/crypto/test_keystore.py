"""Web3 Secret Storage v3 keystore: create, import, list, unlock, and its failure modes."""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account

from powerverse.crypto import keystore as keystore_module
from powerverse.crypto.exceptions import InvalidKey, KeystoreError
from powerverse.crypto.keys import address_of, to_checksum
from powerverse.crypto.keystore import (
    SCRYPT_N,
    Keystore,
    KeystoreEntry,
    default_keystore_dir,
    pv_home,
)

KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
ADDRESS = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
FAST_N = 2**4  # test-only scrypt cost; users get SCRYPT_N


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keystore", scrypt_n=FAST_N)


def test_import_then_unlock(store: Keystore) -> None:
    assert store.import_key(KEY, "hunter2") == ADDRESS
    assert store.unlock(ADDRESS, "hunter2") == KEY


def test_new_makes_a_fresh_unlockable_account(store: Keystore) -> None:
    first = store.new("pw")
    second = store.new("pw")
    assert first != second
    assert address_of(store.unlock(first, "pw")) == first
    assert {e.address for e in store.list()} == {first, second}


def test_file_is_geth_named_private_and_standard(store: Keystore) -> None:
    store.import_key(KEY, "pw")
    (entry,) = store.list()
    assert re.fullmatch(
        r"UTC--\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{9}Z--f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        entry.path.name,
    )
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    document = json.loads(entry.path.read_text())
    assert document["version"] == 3
    assert document["address"] == ADDRESS.hex()
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["kdfparams"]["n"] == FAST_N
    # Any v3 reader (here eth-account's) can open it.
    assert bytes(Account.decrypt(document, "pw")) == KEY


def test_file_name_uses_the_injected_clock(tmp_path: Path) -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    store = Keystore(tmp_path, scrypt_n=FAST_N, clock=lambda: when)
    store.import_key(KEY, "pw")
    (entry,) = store.list()
    assert entry.path.name == f"UTC--2024-02-29T23-59-58.123456000Z--{ADDRESS.hex()}"


def test_default_cost_is_standard_scrypt(tmp_path: Path) -> None:
    assert SCRYPT_N == 2**18
    Keystore(tmp_path).import_key(KEY, "pw")
    (path,) = tmp_path.iterdir()
    params = json.loads(path.read_text())["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"]) == (2**18, 8, 1)


def test_files_from_other_tools_are_read(store: Keystore) -> None:
    """A file eth-account wrote (checksummed address, pbkdf2) lists and unlocks."""
    store.directory.mkdir(parents=True)
    document = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=2)
    (store.directory / "from-eth-account.json").write_text(json.dumps(document))
    assert store.list() == [KeystoreEntry(ADDRESS, store.directory / "from-eth-account.json")]
    assert store.unlock(ADDRESS, "pw") == KEY


def test_duplicate_import_is_refused(store: Keystore) -> None:
    store.import_key(KEY, "pw")
    with pytest.raises(KeystoreError, match=f"{to_checksum(ADDRESS)} is already in the keystore"):
        store.import_key(KEY, "other password")
    assert len(store.list()) == 1


def test_wrong_password_is_a_clear_error(store: Keystore) -> None:
    store.import_key(KEY, "right")
    with pytest.raises(KeystoreError, match="wrong password for 0xf39Fd6e5"):
        store.unlock(ADDRESS, "wrong")
    with pytest.raises(KeystoreError, match="wrong password"):
        store.unlock(ADDRESS, "")


def test_unknown_address(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="no key for 0x"):
        store.unlock(ADDRESS, "pw")


def test_invalid_private_key_is_refused(store: Keystore) -> None:
    with pytest.raises(InvalidKey):
        store.import_key(bytes(32), "pw")
    with pytest.raises(InvalidKey):
        store.import_key(KEY[:31], "pw")
    assert store.list() == []


def test_missing_directory_lists_empty(tmp_path: Path) -> None:
    assert Keystore(tmp_path / "nope").list() == []


def test_list_skips_foreign_files(store: Keystore) -> None:
    store.import_key(KEY, "pw")
    (store.directory / "notes.txt").write_text("hello")
    (store.directory / "broken.json").write_text("{")
    (store.directory / "no-address.json").write_text('{"version": 3}')
    (store.directory / "v1.json").write_text('{"version": 1, "address": "' + "00" * 20 + '"}')
    (store.directory / ".hidden").write_text("{}")
    (store.directory / "subdir").mkdir()
    assert [e.address for e in store.list()] == [ADDRESS]


def test_corrupt_key_file_is_reported(store: Keystore) -> None:
    store.import_key(KEY, "pw")
    (entry,) = store.list()
    document = json.loads(entry.path.read_text())
    del document["crypto"]["kdfparams"]
    entry.path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="malformed"):
        store.unlock(ADDRESS, "pw")


def test_file_claiming_another_address_is_caught(store: Keystore) -> None:
    store.import_key(KEY, "pw")
    (entry,) = store.list()
    other = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")
    document = json.loads(entry.path.read_text())
    document["address"] = other.hex()
    entry.path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="another address"):
        store.unlock(other, "pw")


def test_unwritable_directory_is_a_keystore_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeystoreError, match="cannot write"):
        Keystore(blocker / "keystore", scrypt_n=FAST_N).import_key(KEY, "pw")


def test_default_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert pv_home({"PV_HOME": str(tmp_path)}) == tmp_path
    assert default_keystore_dir({"PV_HOME": str(tmp_path)}) == tmp_path / "keystore"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pv_home({}) == tmp_path / "home" / ".powerverse"
    monkeypatch.setenv("PV_HOME", str(tmp_path / "pv"))
    assert default_keystore_dir() == tmp_path / "pv" / "keystore"


def test_module_default_is_read_at_write_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(keystore_module, "SCRYPT_N", 2**5)
    Keystore(tmp_path).import_key(KEY, "pw")
    (path,) = tmp_path.iterdir()
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["n"] == 2**5


def test_bad_hex_in_key_file_is_malformed_not_a_wrong_password(store: Keystore) -> None:
    store.import_key(KEY, "pw")
    (entry,) = store.list()
    document = json.loads(entry.path.read_text())
    document["crypto"]["ciphertext"] = "zz"
    entry.path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="malformed"):
        store.unlock(ADDRESS, "pw")
