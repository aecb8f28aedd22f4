"""PowerVerse: an open decentralized compute cloud."""

import importlib.util as _importlib_util
import os as _os

__version__ = "0.1.0"

# Keccak is on every hot path (transaction hashes, signatures, trie keys). eth-hash picks
# pycryptodome when both are installed; safe-pysha3's C implementation is about 6x faster
# per hash. Both give identical digests; an explicit ETH_HASH_BACKEND still wins.
if _importlib_util.find_spec("sha3") is not None:
    _os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
