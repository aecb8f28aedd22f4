"""Committed test-contract artifacts match a fresh build; the build tool rejects bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from powerverse.contracts import build
from powerverse.contracts.exceptions import BuildError

HERE = Path(__file__).parent
SRC = HERE / "src"
ARTIFACTS = HERE / "artifacts"
CONTRACTS = ("CustomErrors", "PVTestNFT", "PVTestToken")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the test contracts once into a temporary directory."""
    out = tmp_path_factory.mktemp("artifacts")
    build.build(SRC, out)
    return out


def test_rebuild_matches_committed_artifacts(fresh: Path) -> None:
    committed = sorted(p.name for p in ARTIFACTS.glob("*.json"))
    assert committed == sorted(p.name for p in fresh.glob("*.json"))
    for name in committed:
        assert (fresh / name).read_text() == (ARTIFACTS / name).read_text(), (
            f"{name} is out of date: python -m powerverse.contracts.build {SRC} {ARTIFACTS}"
        )


def test_check_reports_nothing_for_committed_artifacts() -> None:
    assert build.check(SRC, ARTIFACTS) == []


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifact_shape(name: str) -> None:
    data = json.loads((ARTIFACTS / f"{name}.json").read_text())
    assert set(data) == {
        "abi",
        "bytecode",
        "compiler",
        "contractName",
        "deployedBytecode",
        "sourceName",
        "storageLayout",
    }
    assert data["contractName"] == name
    assert data["sourceName"] == f"{name}.sol"
    assert data["bytecode"].startswith("0x60") and len(data["bytecode"]) > 100
    assert data["deployedBytecode"].startswith("0x60")
    assert data["compiler"]["version"].startswith("0.8.30+")
    assert data["compiler"]["settings"] == {
        "evmVersion": "prague",
        "optimizer": {"enabled": True, "runs": 200},
    }
    assert isinstance(data["storageLayout"]["storage"], list)


def test_artifacts_are_stably_formatted() -> None:
    for path in ARTIFACTS.glob("*.json"):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_custom_errors_abi_declares_errors_and_event() -> None:
    abi = json.loads((ARTIFACTS / "CustomErrors.json").read_text())["abi"]
    errors = {e["name"]: [i["type"] for i in e["inputs"]] for e in abi if e["type"] == "error"}
    assert errors["InsufficientBalance"] == ["address", "uint256", "uint256"]
    event = next(e for e in abi if e["type"] == "event" and e["name"] == "ValueChanged")
    assert [(i["name"], i["indexed"]) for i in event["inputs"]] == [
        ("oldValue", True),
        ("newValue", False),
        ("by", True),
    ]


def test_token_storage_layout_names_balances() -> None:
    layout = json.loads((ARTIFACTS / "PVTestToken.json").read_text())["storageLayout"]
    assert layout["storage"][0]["label"] == "_balances"


def test_check_lists_stale_changed_and_missing(tmp_path: Path, fresh: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for path in fresh.glob("*.json"):
        (out / path.name).write_text(path.read_text())
    (out / "Gone.json").write_text("{}\n")
    (out / "PVTestNFT.json").unlink()
    token = json.loads((out / "PVTestToken.json").read_text())
    token["bytecode"] = "0x00"
    (out / "PVTestToken.json").write_text(json.dumps(token))
    problems = build.check(SRC, out)
    assert len(problems) == 3
    assert any(p.startswith("stale") and "Gone.json" in p for p in problems)
    assert any(p.startswith("missing") and "PVTestNFT.json" in p for p in problems)
    assert any(p.startswith("out of date") and "(bytecode)" in p for p in problems)


def test_main_check_exit_codes(
    tmp_path: Path, fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build.main(["--check", str(SRC), str(ARTIFACTS)]) == 0
    assert build.main(["--check", str(SRC), str(tmp_path / "empty")]) == 1
    assert "missing" in capsys.readouterr().err


def test_build_removes_stale_artifacts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "A.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract A {}\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "Old.json").write_text("{}\n")
    written = build.build(src, out)
    assert [p.name for p in written] == ["A.json"]
    assert sorted(p.name for p in out.iterdir()) == ["A.json"]


def test_nested_sources_and_relative_imports(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    header = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n"
    (src / "lib" / "L.sol").write_text(header + "library L { function f() internal {} }\n")
    (src / "B.sol").write_text(header + 'import {L} from "./lib/L.sol";\ncontract B {}\n')
    artifacts = build.compile_sources(src)
    assert [(a.contract_name, a.source_name) for a in artifacts] == [
        ("B", "B.sol"),
        ("L", "lib/L.sol"),
    ]


def test_compile_error_raises_with_message(tmp_path: Path) -> None:
    (tmp_path / "Bad.sol").write_text("pragma solidity ^0.8.24;\ncontract Bad { uint x = ; }\n")
    with pytest.raises(BuildError, match="ParserError"):
        build.compile_sources(tmp_path)


def test_missing_import_raises(tmp_path: Path) -> None:
    (tmp_path / "I.sol").write_text(
        'pragma solidity ^0.8.24;\nimport "./Nope.sol";\ncontract I {}\n'
    )
    with pytest.raises(BuildError, match=r"Nope\.sol"):
        build.compile_sources(tmp_path)


def test_import_outside_tree_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "Outside.sol").write_text("pragma solidity ^0.8.24;\ncontract O {}\n")
    (src / "X.sol").write_text(
        'pragma solidity ^0.8.24;\nimport "../Outside.sol";\ncontract X {}\n'
    )
    with pytest.raises(BuildError):
        build.compile_sources(src)


def test_duplicate_contract_names_rejected(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for sub in ("a", "b"):
        (tmp_path / sub / "D.sol").write_text("pragma solidity ^0.8.24;\ncontract D {}\n")
    with pytest.raises(BuildError, match="defined in both"):
        build.compile_sources(tmp_path)


def test_empty_or_missing_source_dir_rejected(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no \.sol files"):
        build.collect_sources(tmp_path)
    with pytest.raises(BuildError, match="not found"):
        build.collect_sources(tmp_path / "nope")
    assert build.main([str(tmp_path / "nope"), str(tmp_path / "out")]) == 2


def test_repo_root_without_node_modules_rejected(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}\n")
    with pytest.raises(BuildError, match="npm ci"):
        build.compile_sources(SRC, repo_root=tmp_path)
    assert build.find_repo_root(tmp_path / "deeper" / "x") == tmp_path


def test_find_repo_root_fails_without_package_json(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no package\.json"):
        build.find_repo_root(Path("/"))
