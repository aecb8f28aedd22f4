"""`pv account new | import | list` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from powerverse.cli.account import app
from powerverse.crypto import keystore as keystore_module
from powerverse.crypto.keys import parse_address
from powerverse.crypto.keystore import Keystore

KEY_HEX = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
KEY_1_HEX = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDRESS_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep scrypt cheap in tests; users get the standard cost."""
    monkeypatch.setattr(keystore_module, "SCRYPT_N", 2**4)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def ks(tmp_path: Path) -> Path:
    return tmp_path / "keystore"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    return write(tmp_path / "password.txt", "s3cret\nignored second line\n")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return write(tmp_path / "key.txt", f"  0x{KEY_HEX}\n")


def test_new_with_password_file(runner: CliRunner, ks: Path, password_file: Path) -> None:
    result = runner.invoke(
        app, ["new", "--keystore", str(ks), "--password-file", str(password_file)]
    )
    assert result.exit_code == 0, result.output
    assert "Created account 0x" in result.stdout
    (entry,) = Keystore(ks).list()
    assert entry.checksum in result.stdout
    assert str(entry.path) in result.stdout
    Keystore(ks).unlock(entry.address, "s3cret")  # first line only


def test_new_json_is_one_document(runner: CliRunner, ks: Path, password_file: Path) -> None:
    args = ["new", "--keystore", str(ks), "--password-file", str(password_file), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"address", "path"}
    (entry,) = Keystore(ks).list()
    assert document == {"address": entry.checksum, "path": str(entry.path)}


def test_new_prompts_with_confirmation(runner: CliRunner, ks: Path) -> None:
    result = runner.invoke(
        app, ["new", "--keystore", str(ks), "--json"], input="one\ntwo\nright\nright\n"
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.stderr
    address = parse_address(json.loads(result.stdout)["address"])  # prompts went to stderr
    Keystore(ks).unlock(address, "right")
    assert "right" not in result.output  # hidden input is not echoed


def test_new_prompt_aborted(runner: CliRunner, ks: Path) -> None:
    result = runner.invoke(app, ["new", "--keystore", str(ks)], input="")
    assert result.exit_code == 1
    assert Keystore(ks).list() == []


def test_import_from_files(
    runner: CliRunner, ks: Path, password_file: Path, key_file: Path
) -> None:
    args = ["import", "--keystore", str(ks), "--password-file", str(password_file)]
    result = runner.invoke(app, [*args, "--private-key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert f"Imported account {ADDRESS}" in result.stdout
    assert KEY_HEX not in result.output
    assert Keystore(ks).unlock(parse_address(ADDRESS), "s3cret") == bytes.fromhex(KEY_HEX)


def test_import_prompts_for_key_and_password(runner: CliRunner, ks: Path) -> None:
    result = runner.invoke(
        app, ["import", "--keystore", str(ks), "--json"], input=f"{KEY_HEX}\npw\npw\n"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["address"] == ADDRESS
    assert KEY_HEX not in result.output
    assert Keystore(ks).unlock(parse_address(ADDRESS), "pw") == bytes.fromhex(KEY_HEX)


def test_import_duplicate_is_a_user_error(
    runner: CliRunner, ks: Path, password_file: Path, key_file: Path
) -> None:
    args = ["import", "--keystore", str(ks), "--password-file", str(password_file)]
    args += ["--private-key-file", str(key_file), "--json"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error:" in result.stderr
    assert f"{ADDRESS} is already in the keystore" in result.stderr
    assert len(Keystore(ks).list()) == 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        KEY_HEX[:-2],
        KEY_HEX + "00",
        "zz" + KEY_HEX[2:],
        "00" * 32,  # zero is not a valid secp256k1 key
        "ff" * 32,  # >= n
    ],
)
def test_import_rejects_bad_keys_without_echoing_them(
    runner: CliRunner, ks: Path, password_file: Path, tmp_path: Path, text: str
) -> None:
    key_file = write(tmp_path / "bad-key.txt", text)
    args = ["import", "--keystore", str(ks), "--password-file", str(password_file)]
    result = runner.invoke(app, [*args, "--private-key-file", str(key_file)])
    assert result.exit_code == 1
    assert "private key must be 64 hex digits" in result.stderr
    if len(text) > 8:
        assert text not in result.output
    assert Keystore(ks).list() == []


def test_missing_files_are_user_errors(runner: CliRunner, ks: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    result = runner.invoke(app, ["new", "--keystore", str(ks), "--password-file", str(missing)])
    assert result.exit_code == 1
    assert f"cannot read password file {missing}" in result.stderr
    result = runner.invoke(
        app, ["import", "--keystore", str(ks), "--private-key-file", str(missing)]
    )
    assert result.exit_code == 1
    assert f"cannot read private key file {missing}" in result.stderr


def test_unwritable_keystore_is_a_user_error(
    runner: CliRunner, tmp_path: Path, password_file: Path
) -> None:
    blocker = write(tmp_path / "a-file", "")
    args = ["new", "--keystore", str(blocker / "ks"), "--password-file", str(password_file)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "cannot write key file" in result.stderr


def test_list_empty(runner: CliRunner, ks: Path) -> None:
    result = runner.invoke(app, ["list", "--keystore", str(ks)])
    assert result.exit_code == 0
    assert "No accounts" in result.stdout
    result = runner.invoke(app, ["list", "--keystore", str(ks), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"keystore": str(ks), "accounts": []}


def test_list_shows_imported_accounts(
    runner: CliRunner, ks: Path, password_file: Path, tmp_path: Path
) -> None:
    for key in (KEY_HEX, KEY_1_HEX):
        key_file = write(tmp_path / "k.txt", key)
        args = ["import", "--keystore", str(ks), "--password-file", str(password_file)]
        result = runner.invoke(app, [*args, "--private-key-file", str(key_file)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["list", "--keystore", str(ks), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert {a["address"] for a in document["accounts"]} == {ADDRESS, ADDRESS_1}
    assert all(Path(a["path"]).parent == ks for a in document["accounts"])
    human = runner.invoke(app, ["list", "--keystore", str(ks)])
    assert human.exit_code == 0
    assert ADDRESS in human.stdout
    assert ADDRESS_1 in human.stdout


def test_default_keystore_is_under_pv_home(
    runner: CliRunner, tmp_path: Path, password_file: Path
) -> None:
    env = {"PV_HOME": str(tmp_path / "home")}
    result = runner.invoke(app, ["new", "--password-file", str(password_file), "--json"], env=env)
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.stdout)["path"])
    assert path.parent == tmp_path / "home" / "keystore"
    listed = runner.invoke(app, ["list", "--json"], env=env)
    assert json.loads(listed.stdout)["accounts"][0]["path"] == str(path)


@pytest.mark.parametrize(
    "args",
    [
        ["import", KEY_HEX],  # the key is never accepted as an argument
        ["new", "--no-such-option"],
        ["list", "--keystore"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("new", "import", "list"):
        assert command in result.stdout
    result = runner.invoke(app, ["import", "--help"])
    assert "--private-key-file" in result.stdout
    assert "--password-file" in result.stdout
