"""`pv contracts` and the system-contract options of `pv genesis init`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from powerverse.chain.genesis import load_genesis
from powerverse.cli.app import _register_subcommands, app
from powerverse.contracts.system import SYSTEM_ADDRESSES, SYSTEM_CONTRACTS

_register_subcommands()
runner = CliRunner()


def test_addresses_lists_every_system_contract_as_json() -> None:
    result = runner.invoke(app, ["contracts", "addresses", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["contracts"]
    assert {r["name"]: r["address"] for r in rows} == {
        n: "0x" + a.hex() for n, a in SYSTEM_ADDRESSES.items()
    }
    deployed = {c.name for c in SYSTEM_CONTRACTS}
    assert {r["name"] for r in rows if r["predeployed"]} == deployed


def _key(tmp_path: Path) -> Path:
    key = tmp_path / "v.json"
    assert runner.invoke(app, ["genesis", "validator-key", "--out", str(key)]).exit_code == 0
    return key


def test_genesis_init_refuses_a_malformed_foundation(tmp_path: Path) -> None:
    args = ["genesis", "init", "--chain-id", "9", "--validator-key", str(_key(tmp_path))]
    result = runner.invoke(app, [*args, "--foundation", "0x1234", "--out", str(tmp_path / "g")])
    assert result.exit_code == 1
    assert "--foundation '0x1234'" in result.stderr
    assert not (tmp_path / "g").exists()


def test_genesis_init_predeploys_the_system_contracts(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    foundation = "0x" + "ab" * 20
    args = ["genesis", "init", "--chain-id", "9", "--validator-key", str(_key(tmp_path))]
    result = runner.invoke(app, [*args, "--foundation", foundation, "--out", str(out)])
    assert result.exit_code == 0, result.output
    genesis = load_genesis(out)
    for contract in SYSTEM_CONTRACTS:
        assert genesis.alloc[contract.address].code, contract.name
