"""Consensus stakes read from the Staking system contract, as of a finalized block.

Sortition at height ``h`` weighs validators by their stake in the state after block
``h - lookback`` (docs/consensus.md). That state is final on every node, so every node computes
the same committee. The validator set is what ``Staking.activeValidators()`` returns there:
registered, not jailed, self-stake at least the minimum; stake in wei is counted in whole
``stake_unit_wei`` units. A chain whose genesis has no Staking contract keeps the genesis set.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from eth.abc import BlockHeaderAPI
from eth_abi.abi import decode as abi_decode
from eth_typing import Address
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import Blockchain, CallRequest
from powerverse.chain.genesis import Genesis
from powerverse.consensus.committee import GenesisStakes, StakeEntry
from powerverse.contracts.system import STAKING

__all__ = ["ContractStakes", "StakingReadError"]

_ACTIVE_VALIDATORS = keccak(text="activeValidators()")[:4]
_CACHE = 64
_CALL_GAS = 200_000_000


class StakingReadError(RuntimeError):
    """The Staking contract could not be read at a block this node should have."""


class ContractStakes:
    """A StakeSource over the node's chain: the Staking contract at each height."""

    def __init__(self, chain: Blockchain, genesis: Genesis) -> None:
        self._chain = chain
        self._unit = genesis.consensus.stake_unit_wei
        self._fallback = GenesisStakes.of(genesis)
        self._cache: OrderedDict[bytes, Mapping[bytes, StakeEntry]] = OrderedDict()
        self._lock = threading.Lock()

    def stakes_at(self, height: int) -> Mapping[bytes, StakeEntry]:
        """Validators by consensus key after block `height` (which this node must have)."""
        if height > self._chain.height:
            raise StakingReadError(
                f"stakes asked at height {height}, beyond this node's head {self._chain.height}"
            )
        header = self._chain.header_by_number(height)
        key = bytes(header.hash)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        entries = self._read(header)
        with self._lock:
            self._cache[key] = entries
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return entries

    def _read(self, header: BlockHeaderAPI) -> Mapping[bytes, StakeEntry]:
        state = self._chain.state_at(header)
        if not state.get_code(Address(STAKING)):
            return self._fallback.stakes_at(0)
        comp = self._chain.execute_call(
            CallRequest(to=STAKING, data=_ACTIVE_VALIDATORS, gas=_CALL_GAS), header
        )
        if comp.is_error:
            raise StakingReadError(
                f"Staking.activeValidators() failed at block {header.block_number}: {comp.error!r}"
            )
        accounts, keys, stakes = abi_decode(
            ["address[]", "bytes32[]", "uint256[]"], bytes(comp.output)
        )
        entries: dict[bytes, StakeEntry] = {}
        for account, consensus_key, wei in zip(accounts, keys, stakes, strict=True):
            units = int(wei) // self._unit
            if units > 0:
                pk = bytes(consensus_key)
                entries[pk] = StakeEntry(pk, bytes.fromhex(str(account)[2:]), units)
        return entries
