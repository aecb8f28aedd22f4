"""Imports go one way: crypto ← chain ← node.service ← rpc ← node.runner ← cli, and
crypto ← chain ← contracts ← market ← infra ← cli; economics (pure tokenomics) imports nothing
of powerverse and anything may import it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "powerverse"

# What each package (or module) may import from powerverse, besides itself.
ALLOWED: dict[str, set[str]] = {
    "economics": set(),
    "crypto": set(),
    "chain": {"crypto", "economics"},
    "consensus": {"crypto", "chain", "economics"},
    "p2p": {"crypto", "chain", "consensus", "economics"},
    "node.service": {"crypto", "chain", "consensus", "economics"},
    "rpc": {"crypto", "chain", "consensus", "node.service", "economics"},
    "contracts": {"crypto", "chain", "economics"},
    "market": {"crypto", "chain", "contracts", "economics"},
    "infra": {"crypto", "chain", "contracts", "market", "economics"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "node" and len(parts) > 1 and parts[1] == "service":
        return "node.service"
    return parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("powerverse."):
                found.add(name.removeprefix("powerverse."))
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_point_down_the_layers(module: str, path: Path) -> None:
    layer = _layer(module)
    if layer not in ALLOWED:
        return  # composition roots (cli, node.runner) may import anything
    for imported in _imports(path):
        target = _layer(imported)
        if target == layer or target == "__init__" or imported == "":
            continue
        assert target in ALLOWED[layer], f"{module} must not import powerverse.{imported}"
