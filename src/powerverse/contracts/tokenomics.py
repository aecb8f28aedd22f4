"""Check a genesis against the tokenomics table (what `pv tokenomics check` runs).

The checks: the table adds up to the total supply; every genesis balance together is exactly
the total supply; the emission pool, each Vesting contract and the Airdrop hold their
allocation; each Vesting pays the right beneficiary the installments of
`economics.allocations.vesting_installments` and has exactly the code and storage its constructor
makes; every other genesis balance is paid from the presale's genesis part, as the genesis's
`tokenomics.presaleGenesis` lists, and those add up to that part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.constants import ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.vm.message import Message
from eth_abi.abi import decode as abi_decode
from eth_typing import Address
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import chain_class, genesis_params, genesis_state
from powerverse.chain.genesis import Genesis
from powerverse.contracts.exceptions import ContractsError
from powerverse.contracts.system import (
    TOKENOMICS_ADDRESSES,
    TOKENOMICS_CONTRACTS,
    SystemConfig,
    system_alloc,
)
from powerverse.economics.allocations import (
    AIRDROP_CLAIM,
    AIRDROP_MAX_CLAIMS,
    ALLOCATIONS,
    PRESALE_GENESIS_PART,
    VESTED_NAMES,
    TokenomicsParams,
    vesting_installments,
)
from powerverse.economics.constants import PVC, TOTAL_SUPPLY

__all__ = ["AllocationCheck", "TokenomicsCheck", "check_genesis"]

CALL_GAS = 100_000_000
_ANY_ADMIN = (1).to_bytes(20, "big")
"""Deployer of the expected contracts: only the Airdrop stores it (its roles), and only the
Airdrop's code, not its storage, is compared."""


@dataclass(frozen=True)
class AllocationCheck:
    """One allocation: where it lies, what it should hold at genesis, what it holds."""

    name: str
    address: str | None
    expected: int
    actual: int
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is wrong with this allocation."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (wei as decimal strings)."""
        return {
            "name": self.name,
            "address": self.address,
            "expected": str(self.expected),
            "actual": str(self.actual),
            "ok": self.ok,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class TokenomicsCheck:
    """The verdict: per-allocation rows and every problem found (empty: the genesis holds)."""

    allocations: tuple[AllocationCheck, ...]
    problems: tuple[str, ...] = field(default=())
    total_balance: int = 0

    @property
    def ok(self) -> bool:
        """True when the genesis matches the table exactly."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "ok": self.ok,
            "totalSupply": str(TOTAL_SUPPLY),
            "totalBalance": str(self.total_balance),
            "allocations": [a.to_json() for a in self.allocations],
            "problems": list(self.problems),
        }


def _pvc(wei: int) -> str:
    whole, frac = divmod(wei, PVC)
    return f"{whole:,}" + (f".{frac:018d}".rstrip("0") if frac else "") + " PVC"


class _GenesisEvm:
    """Runs view calls against block 0 of a genesis, in memory."""

    def __init__(self, genesis: Genesis) -> None:
        chain = chain_class(genesis.chain_id).from_genesis(
            AtomicDB(MemoryDB()), genesis_params(genesis), genesis_state(genesis)
        )
        self._vm = chain.get_vm()

    def call(self, to: bytes, signature: str, out: list[str]) -> tuple[Any, ...]:
        """ABI-decoded result of calling `signature` (no arguments) on `to`."""
        with self._vm.in_costless_state() as state:
            message = Message(
                gas=CALL_GAS,
                to=Address(to),
                sender=ZERO_ADDRESS,
                value=0,
                data=keccak(text=signature)[:4],
                code=state.get_code(Address(to)),
            )
            context = state.get_transaction_context_class()(gas_price=0, origin=ZERO_ADDRESS)
            comp = state.computation_class.apply_message(state, message, context)
            if comp.is_error:
                raise ContractsError(f"{signature} failed: {comp.error!r}")
            return tuple(abi_decode(out, bytes(comp.output)))


def check_genesis(genesis: Genesis) -> TokenomicsCheck:
    """Check `genesis` against the tokenomics table; every mismatch is named."""
    problems: list[str] = []
    table = sum(a.total for a in ALLOCATIONS)
    if table != TOTAL_SUPPLY:
        problems.append(f"the allocation table adds up to {_pvc(table)}, not {_pvc(TOTAL_SUPPLY)}")
    total = genesis.total_balance()
    if total != TOTAL_SUPPLY:
        problems.append(
            f"the genesis balances add up to {_pvc(total)} ({total} wei), "
            f"not the total supply {_pvc(TOTAL_SUPPLY)}"
        )
    tokenomics = genesis.tokenomics
    if tokenomics is None:
        problems.append("the genesis has no tokenomics section (listing time, beneficiaries)")
        return TokenomicsCheck((), tuple(problems), total)
    params = tokenomics.params(genesis.timestamp)
    evm = _GenesisEvm(genesis)
    expected_state = _expected_contracts(genesis)
    rows = []
    for a in ALLOCATIONS:
        address = TOKENOMICS_ADDRESSES[a.name]
        acct = genesis.alloc.get(address)
        balance = acct.balance if acct is not None else 0
        expected = a.total - PRESALE_GENESIS_PART if a.name == "presale" else a.total
        found: list[str] = []
        where = to_checksum_address(address)
        if balance != expected:
            found.append(f"{a.name} at {where} holds {_pvc(balance)}, not {_pvc(expected)}")
        if a.name == "block_rewards":
            if acct is not None and (acct.code or acct.storage):
                found.append(f"the emission pool {where} must be a plain account (it has code)")
        elif acct is None or not acct.code:
            found.append(f"{a.name}: no contract at {where}")
        else:
            found += _check_contract(a.name, address, evm, expected_state, genesis)
            if a.name in VESTED_NAMES:
                found += _check_vesting(a.name, address, evm, genesis, params)
        rows.append(AllocationCheck(a.name, where, expected, balance, tuple(found)))
        problems += found
    problems += _check_presale_genesis(genesis)
    return TokenomicsCheck(tuple(rows), tuple(problems), total)


def _expected_contracts(genesis: Genesis) -> dict[bytes, Any]:
    """The code and storage the tokenomics constructors make for this genesis."""
    assert genesis.tokenomics is not None
    config = SystemConfig(
        foundation=_ANY_ADMIN, tokenomics=genesis.tokenomics, genesis_time=genesis.timestamp
    )
    try:
        return dict(
            system_alloc(
                config,
                chain_id=genesis.chain_id,
                timestamp=genesis.timestamp,
                contracts=TOKENOMICS_CONTRACTS,
            )
        )
    except (ContractsError, KeyError) as exc:
        raise ContractsError(f"cannot build the expected tokenomics contracts: {exc}") from exc


def _check_contract(
    name: str, address: bytes, evm: _GenesisEvm, expected: dict[bytes, Any], genesis: Genesis
) -> list[str]:
    acct = genesis.alloc[address]
    want = expected.get(address)
    where = to_checksum_address(address)
    found = []
    if want is None or acct.code != want.code:
        kind = "an Airdrop" if name == "airdrop" else f"a Vesting built for {name}'s schedule"
        found.append(f"{name}: the code at {where} is not {kind}")
    elif name != "airdrop" and acct.storage != want.storage:
        found.append(f"{name}: the storage at {where} is not what its constructor writes")
    if name == "airdrop":
        try:
            (amount,) = evm.call(address, "claimAmount()", ["uint256"])
            (claims,) = evm.call(address, "maxClaims()", ["uint256"])
            (count,) = evm.call(address, "claimCount()", ["uint256"])
        except ContractsError as exc:
            return [*found, f"airdrop: {exc}"]
        if (amount, claims, count) != (AIRDROP_CLAIM, AIRDROP_MAX_CLAIMS, 0):
            found.append(
                f"airdrop: pays {_pvc(amount)} x {claims} claims ({count} made), "
                f"not {_pvc(AIRDROP_CLAIM)} x {AIRDROP_MAX_CLAIMS}"
            )
    return found


def _check_vesting(
    name: str, address: bytes, evm: _GenesisEvm, genesis: Genesis, params: TokenomicsParams
) -> list[str]:
    assert genesis.tokenomics is not None
    try:
        (beneficiary,) = evm.call(address, "beneficiary()", ["address"])
        times, amounts = evm.call(address, "installments()", ["uint64[]", "uint256[]"])
        (released,) = evm.call(address, "released()", ["uint256"])
    except ContractsError as exc:
        return [f"{name}: {exc}"]
    found = []
    want_beneficiary = to_checksum_address(genesis.tokenomics.beneficiaries[name])
    if to_checksum_address(beneficiary) != want_beneficiary:
        found.append(
            f"{name}: pays {to_checksum_address(beneficiary)}, the genesis names {want_beneficiary}"
        )
    rows = list(zip((int(t) for t in times), (int(a) for a in amounts), strict=True))
    want = vesting_installments(name, params)
    if len(rows) != len(want):
        found.append(f"{name}: {len(rows)} installments, the table has {len(want)}")
    for i, (got, exp) in enumerate(zip(rows, want, strict=False)):
        if got != exp:
            found.append(
                f"{name}: installment {i} is {_pvc(got[1])} at {got[0]}, "
                f"the table says {_pvc(exp[1])} at {exp[0]}"
            )
    if released:
        found.append(f"{name}: {_pvc(released)} already released at genesis")
    return found


def _check_presale_genesis(genesis: Genesis) -> list[str]:
    assert genesis.tokenomics is not None
    listed = genesis.tokenomics.presale_genesis
    pools = set(TOKENOMICS_ADDRESSES.values())
    found = []
    paid = sum(listed.values())
    if paid != PRESALE_GENESIS_PART:
        found.append(
            f"presale genesis part: presaleGenesis lists {_pvc(paid)}, "
            f"not {_pvc(PRESALE_GENESIS_PART)}"
        )
    for address, amount in sorted(listed.items()):
        held = genesis.alloc[address].balance if address in genesis.alloc else 0
        if held != amount:
            found.append(
                f"presale genesis part: {to_checksum_address(address)} holds {_pvc(held)}, "
                f"presaleGenesis lists {_pvc(amount)}"
            )
    for address, acct in sorted(genesis.alloc.items()):
        if address not in pools and acct.balance and address not in listed:
            found.append(
                f"{to_checksum_address(address)} holds {_pvc(acct.balance)} at genesis, "
                "which is neither a tokenomics pool nor listed in presaleGenesis"
            )
    return found
