"""Compile a tree of Solidity sources into one JSON artifact per contract.

Run as ``python -m powerverse.contracts.build [--check] SRC_DIR OUT_DIR``. Every ``.sol`` file
under SRC_DIR is compiled in one solc run by the pinned ``solc`` npm package (through
``solc_compile.mjs``); ``@openzeppelin/...`` imports are read from the repository's
``node_modules``. Source names are paths relative to SRC_DIR, so artifacts do not depend on where
the checkout lies. With ``--check`` nothing is written: the sources are compiled into a temporary
directory and the command exits 1, listing the differences, if the committed artifacts differ.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powerverse.contracts.exceptions import BuildError

__all__ = [
    "Artifact",
    "CompilerSettings",
    "build",
    "check",
    "collect_sources",
    "compile_sources",
    "find_repo_root",
    "main",
    "render_artifact",
    "write_artifacts",
]

log = logging.getLogger(__name__)

SOLC_SCRIPT = Path(__file__).with_name("solc_compile.mjs")
NPM_PREFIXES: tuple[str, ...] = ("@openzeppelin/",)
COMPILE_TIMEOUT_S = 600.0
_OUTPUT_SELECTION = [
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
    "storageLayout",
]


@dataclass(frozen=True, kw_only=True)
class CompilerSettings:
    """The solc settings that shape the bytecode; recorded in every artifact."""

    evm_version: str = "prague"
    optimizer_runs: int = 200
    npm_prefixes: tuple[str, ...] = field(default=NPM_PREFIXES)

    def to_solc(self) -> dict[str, Any]:
        """Return the standard-JSON ``settings`` fragment (without outputSelection)."""
        return {
            "evmVersion": self.evm_version,
            "optimizer": {"enabled": True, "runs": self.optimizer_runs},
        }


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """One compiled contract, in the shape written to ``<OUT_DIR>/<contractName>.json``."""

    contract_name: str
    source_name: str
    abi: list[Any]
    bytecode: str
    deployed_bytecode: str
    storage_layout: dict[str, Any]
    compiler_version: str
    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the artifact as the JSON object that is committed."""
        return {
            "contractName": self.contract_name,
            "sourceName": self.source_name,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "storageLayout": self.storage_layout,
            "compiler": {"version": self.compiler_version, "settings": self.settings},
        }


def render_artifact(artifact: Artifact) -> str:
    """Serialise an artifact stably: sorted keys, indent 2, trailing newline."""
    return json.dumps(artifact.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def find_repo_root(start: Path | None = None) -> Path:
    """Return the nearest directory at or above ``start`` (default: this file) with package.json."""
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "package.json").is_file():
            return candidate
    raise BuildError(f"no package.json found at or above {here}")


def collect_sources(src_dir: Path) -> dict[str, str]:
    """Read every .sol file under ``src_dir``, keyed by its POSIX path relative to it."""
    if not src_dir.is_dir():
        raise BuildError(f"source directory not found: {src_dir}")
    sources: dict[str, str] = {}
    for path in sorted(src_dir.rglob("*.sol")):
        if path.is_file():
            try:
                sources[path.relative_to(src_dir).as_posix()] = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BuildError(f"{path} is not UTF-8: {exc}") from exc
    if not sources:
        raise BuildError(f"no .sol files under {src_dir}")
    return sources


def _standard_input(sources: Mapping[str, str], settings: CompilerSettings) -> dict[str, Any]:
    """Build the solc standard-JSON input for ``sources``."""
    return {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            **settings.to_solc(),
            "outputSelection": {name: {"*": _OUTPUT_SELECTION} for name in sources},
        },
    }


def _run_solc(
    standard_input: dict[str, Any], src_dir: Path, repo_root: Path, settings: CompilerSettings
) -> dict[str, Any]:
    """Run solc_compile.mjs on ``standard_input`` and return its parsed output."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not on PATH; the Solidity compiler runs under Node.js")
    modules = repo_root / "node_modules"
    if not (modules / "solc").is_dir():
        raise BuildError(f"{modules}/solc is missing; run `npm ci` (scripts/setup) in {repo_root}")
    cmd = [node, str(SOLC_SCRIPT), "--base-path", str(src_dir.resolve())]
    for prefix in settings.npm_prefixes:
        cmd += ["--remap", f"{prefix}={modules / prefix}"]
    try:
        proc = subprocess.run(
            cmd,
            input=json.dumps(standard_input).encode(),
            capture_output=True,
            cwd=repo_root,
            timeout=COMPILE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"solc did not finish within {COMPILE_TIMEOUT_S:.0f} s") from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise BuildError(f"solc_compile.mjs exited {proc.returncode}: {stderr}")
    try:
        output: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise BuildError(f"solc_compile.mjs wrote invalid JSON: {exc}") from exc
    return output


def _check_diagnostics(output: Mapping[str, Any]) -> None:
    """Log compiler warnings and raise BuildError if solc reported any error."""
    errors: list[str] = []
    for diag in output.get("errors", []):
        text = str(diag.get("formattedMessage") or diag.get("message", diag)).rstrip()
        if diag.get("severity") == "error":
            errors.append(text)
        else:
            log.warning("solc: %s", text)
    if errors:
        raise BuildError("solc reported errors:\n" + "\n".join(errors))


def _artifacts_from_output(
    output: Mapping[str, Any], sources: Mapping[str, str], settings: CompilerSettings
) -> list[Artifact]:
    """Turn the contracts of ``sources`` in solc's output into artifacts."""
    version = output.get("solcVersion")
    if not isinstance(version, str):
        raise BuildError("solc output carries no solcVersion")
    artifacts: dict[str, Artifact] = {}
    for source_name in sources:
        for name, contract in sorted(output.get("contracts", {}).get(source_name, {}).items()):
            evm = contract["evm"]
            if evm["bytecode"].get("linkReferences"):
                raise BuildError(f"{source_name}:{name} needs library linking (unsupported)")
            if name in artifacts:
                other = artifacts[name].source_name
                raise BuildError(f"contract {name} defined in both {other} and {source_name}")
            artifacts[name] = Artifact(
                contract_name=name,
                source_name=source_name,
                abi=contract["abi"],
                bytecode="0x" + evm["bytecode"]["object"],
                deployed_bytecode="0x" + evm["deployedBytecode"]["object"],
                storage_layout=contract.get("storageLayout") or {"storage": [], "types": None},
                compiler_version=version,
                settings=settings.to_solc(),
            )
    return [artifacts[name] for name in sorted(artifacts)]


def compile_sources(
    src_dir: Path, *, settings: CompilerSettings | None = None, repo_root: Path | None = None
) -> list[Artifact]:
    """Compile every .sol file under ``src_dir``; return its contracts sorted by name."""
    settings = settings or CompilerSettings()
    root = repo_root or find_repo_root()
    sources = collect_sources(src_dir)
    output = _run_solc(_standard_input(sources, settings), src_dir, root, settings)
    _check_diagnostics(output)
    return _artifacts_from_output(output, sources, settings)


def write_artifacts(artifacts: Sequence[Artifact], out_dir: Path) -> list[Path]:
    """Write one JSON file per artifact into ``out_dir`` and remove stale ``*.json`` files there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for artifact in artifacts:
        path = out_dir / f"{artifact.contract_name}.json"
        text = render_artifact(artifact)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in sorted(set(out_dir.glob("*.json")) - set(written)):
        stale.unlink()
    return written


def build(
    src_dir: Path,
    out_dir: Path,
    *,
    settings: CompilerSettings | None = None,
    repo_root: Path | None = None,
) -> list[Path]:
    """Compile ``src_dir`` and write its artifacts into ``out_dir``; return the files written."""
    return write_artifacts(
        compile_sources(src_dir, settings=settings, repo_root=repo_root), out_dir
    )


def _changed_keys(old: str, new: str) -> list[str]:
    """Name the top-level artifact keys that differ between two renderings."""
    try:
        a, b = json.loads(old), json.loads(new)
    except json.JSONDecodeError:
        return ["<not JSON>"]
    if not isinstance(a, dict):
        return ["<not an object>"]
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k)] or ["<formatting>"]


def check(
    src_dir: Path,
    out_dir: Path,
    *,
    settings: CompilerSettings | None = None,
    repo_root: Path | None = None,
) -> list[str]:
    """Recompile into a temporary directory; return how ``out_dir`` differs (empty if equal)."""
    with tempfile.TemporaryDirectory(prefix="pv-contracts-") as tmp:
        fresh_dir = Path(tmp)
        build(src_dir, fresh_dir, settings=settings, repo_root=repo_root)
        fresh = {p.name: p.read_text(encoding="utf-8") for p in fresh_dir.glob("*.json")}
    committed = {}
    if out_dir.is_dir():
        committed = {p.name: p.read_text(encoding="utf-8") for p in out_dir.glob("*.json")}
    problems: list[str] = []
    for name in sorted(set(fresh) | set(committed)):
        if name not in committed:
            problems.append(f"missing: {out_dir / name}")
        elif name not in fresh:
            problems.append(f"stale (no such contract in the sources): {out_dir / name}")
        elif committed[name] != fresh[name]:
            keys = ", ".join(_changed_keys(committed[name], fresh[name]))
            problems.append(f"out of date: {out_dir / name} ({keys})")
    return problems


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m powerverse.contracts.build",
        description="Compile Solidity sources into JSON artifacts (one per contract).",
    )
    parser.add_argument("--check", action="store_true", help="only verify OUT_DIR is up to date")
    parser.add_argument("--evm-version", default=CompilerSettings.evm_version)
    parser.add_argument("--optimizer-runs", type=int, default=CompilerSettings.optimizer_runs)
    parser.add_argument("src_dir", type=Path, metavar="SRC_DIR")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: 0 = built or up to date, 1 = check found differences, 2 = error."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = CompilerSettings(evm_version=args.evm_version, optimizer_runs=args.optimizer_runs)
    try:
        if args.check:
            problems = check(args.src_dir, args.out_dir, settings=settings)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(
                    f"artifacts in {args.out_dir} are out of date; rebuild with: "
                    f"python -m powerverse.contracts.build {args.src_dir} {args.out_dir}",
                    file=sys.stderr,
                )
                return 1
            print(f"{args.out_dir}: up to date")
            return 0
        written = build(args.src_dir, args.out_dir, settings=settings)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} artifact(s) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
