"""The reference node: a pinned Hardhat 2, installed once into a cache directory by npm.

Run ``python bench/_hardhat.py [--port 8545]`` to install it and serve a node in the foreground.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._accounts import DEV_ACCOUNT_BALANCE, DEV_ACCOUNT_COUNT, DEV_MNEMONIC
from bench._procs import NodeProcess
from bench.exceptions import BenchError, HardhatInstallError

__all__ = [
    "HARDHAT_VERSION",
    "default_cache_dir",
    "ensure_hardhat",
    "hardhat_node",
    "installed_version",
    "write_config",
]

HARDHAT_VERSION = "2.29.1"
HARDFORK = "prague"
CHAIN_ID = 31337


def default_cache_dir() -> Path:
    """Return where Hardhat is installed: $XDG_CACHE_HOME (or ~/.cache)/powerverse/bench/hardhat."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "powerverse" / "bench" / "hardhat"


def installed_version(prefix: Path) -> str | None:
    """Return the Hardhat version installed under prefix, or None."""
    try:
        meta = json.loads((prefix / "node_modules" / "hardhat" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = meta.get("version")
    return version if isinstance(version, str) else None


def ensure_hardhat(prefix: Path | None = None, *, quiet: bool = False) -> Path:
    """Install the pinned Hardhat into prefix unless it is already there; return prefix."""
    prefix = prefix or default_cache_dir()
    if installed_version(prefix) == HARDHAT_VERSION:
        return prefix
    npm = shutil.which("npm")
    if npm is None:
        raise HardhatInstallError("npm is not on PATH; Node.js 20+ is needed to run Hardhat")
    prefix.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"installing hardhat@{HARDHAT_VERSION} into {prefix} (once)", file=sys.stderr)
    command = [
        npm,
        "install",
        "--prefix",
        str(prefix),
        "--save-exact",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        f"hardhat@{HARDHAT_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or installed_version(prefix) != HARDHAT_VERSION:
        raise HardhatInstallError(
            f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )
    return prefix


def write_config(prefix: Path) -> Path:
    """Write the hardhat.config.js of a dev chain matching ours; return its path."""
    (prefix / "contracts").mkdir(exist_ok=True)
    network = {
        "chainId": CHAIN_ID,
        "hardfork": HARDFORK,
        "accounts": {
            "mnemonic": DEV_MNEMONIC,
            "count": DEV_ACCOUNT_COUNT,
            "accountsBalance": str(DEV_ACCOUNT_BALANCE),
        },
    }
    config = {"networks": {"hardhat": network}, "paths": {"sources": "./contracts"}}
    path = prefix / "hardhat.config.js"
    body = json.dumps(config, indent=2)
    text = f"// Written by bench/_hardhat.py.\nmodule.exports = {body};\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def hardhat_node(port: int, prefix: Path | None = None) -> NodeProcess:
    """Return a (not yet started) Hardhat node on 127.0.0.1:port; install Hardhat if needed."""
    prefix = ensure_hardhat(prefix)
    write_config(prefix)
    node = shutil.which("node")
    if node is None:
        raise HardhatInstallError("node is not on PATH")
    cli = prefix / "node_modules" / "hardhat" / "internal" / "cli" / "bootstrap.js"
    return NodeProcess(
        "hardhat",
        [node, str(cli), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        port,
        cwd=prefix,
        env={"HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "DO_NOT_TRACK": "1"},
    )


def main(argv: list[str] | None = None) -> int:
    """Install Hardhat and serve a dev node until interrupted."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8545)
    parser.add_argument("--hardhat-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with hardhat_node(args.port, args.hardhat_dir) as proc:
            print(f"hardhat {HARDHAT_VERSION} at {proc.url} (pid {proc.pid}), log {proc.log_path}")
            proc.wait()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
