"""Package-wide settings."""

from __future__ import annotations

import subprocess
import sys


def test_the_fast_keccak_backend_is_chosen_and_agrees() -> None:
    code = (
        "import powerverse, os\n"
        "from eth_hash.auto import keccak\n"
        "from Crypto.Hash import keccak as ref\n"
        "assert os.environ['ETH_HASH_BACKEND'] == 'pysha3'\n"
        "for data in (b'', b'abc', bytes(range(256)) * 9):\n"
        "    assert keccak(data) == ref.new(digest_bits=256, data=data).digest()\n"
        "print(type(keccak.hasher.__self__).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PySha3Backend"
