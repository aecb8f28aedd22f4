"""Genesis: chain id, start time, gas limit, allocations, consensus parameters, validators.

The genesis file is JSON. Numbers may be JSON integers, decimal strings or
0x-hex strings; byte strings are 0x-hex. Example::

    {
      "chainId": 31337,
      "timestamp": 1767225600,
      "gasLimit": 30000000,
      "baseFeePerGas": 1000000000,
      "extraData": "0x",
      "alloc": {"0xf39f...": {"balance": "10000000000000000000000"}},
      "validators": [{"address": "0x...", "consensusKey": "0x<32 bytes>", "stake": "<wei>"}],
      "consensus": {"tauProposer": 20, "tauCommittee": 2000, ...},
      "tokenomics": {
        "listingTime": 1767225600,
        "presaleUnlockStart": 1780185600,
        "beneficiaries": {"seed": "0x...", "angel": "0x...", ..., "foundation": "0x..."},
        "presaleGenesis": {"0x...": "<wei>", ...}
      }
    }

`tokenomics` (optional; docs/tokenomics.md) says when the coin was listed and who receives each
vested allocation; `presaleGenesis` lists every genesis balance paid out of the presale's 40%
genesis part (28,000,000 PVC), which they must add up to exactly. The allocations themselves
(emission pool, Vesting and Airdrop contracts) are ordinary `alloc` entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_utils.address import is_hex_address, to_canonical_address, to_checksum_address

from powerverse.chain.exceptions import GenesisError
from powerverse.economics.allocations import (
    ALLOCATION_NAMES,
    PRESALE_GENESIS_PART,
    VESTED_NAMES,
    TokenomicsParams,
)

PVC = 10**18
DEFAULT_STAKE = 1000 * PVC
"""A validator's stake when none is given: 1,000 PVC."""
"""One PowerVerse Coin in wei (18 decimals)."""

TOTAL_SUPPLY_PVC = 1_400_000_000
DEV_CHAIN_ID = 31337
DEV_BALANCE = 10_000 * PVC
DEFAULT_GAS_LIMIT = 30_000_000
DEFAULT_BASE_FEE = 1_000_000_000


@dataclass(frozen=True)
class Account:
    """A genesis allocation."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Validator:
    """A genesis validator: account address (fee recipient), ed25519 consensus key, stake in wei.

    Sortition counts stake in whole ``ConsensusParams.stake_unit_wei`` units (1 PVC).
    """

    address: bytes
    consensus_key: bytes
    stake: int


@dataclass(frozen=True)
class ConsensusParams:
    """Agreement parameters; read by the consensus layer."""

    tau_proposer: int = 20
    tau_committee: int = 2000
    threshold_numerator: int = 2
    threshold_denominator: int = 3
    step_timeout_ms: int = 1000
    lookback: int = 2
    stake_unit_wei: int = PVC
    priority_window_ms: int = 200
    propose_timeout_ms: int = 1500
    timeout_increase_ms: int = 500


@dataclass(frozen=True)
class Tokenomics:
    """The genesis's tokenomics section: listing time, beneficiaries, presale genesis recipients.

    `beneficiaries` maps each vested allocation (`economics.allocations.VESTED_NAMES`) to the
    address its Vesting contract pays; the presale's beneficiary also receives what is left of
    the presale genesis part. `presale_genesis` (address -> wei) is every genesis balance paid
    from that part (filled in when the genesis is built; empty before).
    """

    listing_time: int
    beneficiaries: dict[str, bytes]
    presale_unlock_start: int | None = None
    presale_genesis: dict[bytes, int] = field(default_factory=dict)

    def params(self, genesis_time: int) -> TokenomicsParams:
        """The schedule parameters for a chain that starts at `genesis_time`."""
        return TokenomicsParams(
            listing_time=self.listing_time,
            genesis_time=genesis_time,
            presale_unlock_start=self.presale_unlock_start,
        )

    def to_json(self) -> dict[str, Any]:
        """The `tokenomics` section of a genesis file."""
        out: dict[str, Any] = {"listingTime": self.listing_time}
        if self.presale_unlock_start is not None:
            out["presaleUnlockStart"] = self.presale_unlock_start
        out["beneficiaries"] = {
            name: to_checksum_address(self.beneficiaries[name])
            for name in VESTED_NAMES
            if name in self.beneficiaries
        }
        out["presaleGenesis"] = {
            to_checksum_address(a): str(v) for a, v in sorted(self.presale_genesis.items())
        }
        return out


@dataclass(frozen=True)
class Genesis:
    """Everything needed to build block 0 and start the chain."""

    chain_id: int
    timestamp: int
    gas_limit: int = DEFAULT_GAS_LIMIT
    base_fee: int = DEFAULT_BASE_FEE
    extra_data: bytes = b""
    alloc: dict[bytes, Account] = field(default_factory=dict)
    validators: tuple[Validator, ...] = ()
    consensus: ConsensusParams = ConsensusParams()
    tokenomics: Tokenomics | None = None

    def with_timestamp(self, timestamp: int) -> Genesis:
        """A copy starting at another time."""
        return replace(self, timestamp=timestamp)

    def to_json(self) -> dict[str, Any]:
        """The JSON document of this genesis."""
        return {
            "chainId": self.chain_id,
            "timestamp": self.timestamp,
            "gasLimit": self.gas_limit,
            "baseFeePerGas": self.base_fee,
            "extraData": "0x" + self.extra_data.hex(),
            "alloc": {
                to_checksum_address(addr): _account_json(acct)
                for addr, acct in sorted(self.alloc.items())
            },
            "validators": [
                {
                    "address": to_checksum_address(v.address),
                    "consensusKey": "0x" + v.consensus_key.hex(),
                    "stake": str(v.stake),
                }
                for v in self.validators
            ],
            "consensus": {
                "tauProposer": self.consensus.tau_proposer,
                "tauCommittee": self.consensus.tau_committee,
                "thresholdNumerator": self.consensus.threshold_numerator,
                "thresholdDenominator": self.consensus.threshold_denominator,
                "stepTimeoutMs": self.consensus.step_timeout_ms,
                "lookback": self.consensus.lookback,
                "stakeUnitWei": str(self.consensus.stake_unit_wei),
                "priorityWindowMs": self.consensus.priority_window_ms,
                "proposeTimeoutMs": self.consensus.propose_timeout_ms,
                "timeoutIncreaseMs": self.consensus.timeout_increase_ms,
            },
            **({"tokenomics": self.tokenomics.to_json()} if self.tokenomics else {}),
        }

    def dump(self, path: Path) -> None:
        """Write the genesis file."""
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def total_balance(self) -> int:
        """Wei held by every genesis account together (stakes minted into contracts included)."""
        return sum(acct.balance for acct in self.alloc.values())


def _account_json(acct: Account) -> dict[str, Any]:
    out: dict[str, Any] = {"balance": str(acct.balance)}
    if acct.nonce:
        out["nonce"] = acct.nonce
    if acct.code:
        out["code"] = "0x" + acct.code.hex()
    if acct.storage:
        out["storage"] = {hex(k): hex(v) for k, v in sorted(acct.storage.items())}
    return out


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise GenesisError(f"{what}: expected a number, got a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        try:
            result = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            raise GenesisError(f"{what}: {value!r} is not a number") from None
    else:
        raise GenesisError(f"{what}: expected a number, got {type(value).__name__}")
    if result < 0:
        raise GenesisError(f"{what}: must not be negative")
    return result


def _bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise GenesisError(f"{what}: expected a 0x-prefixed hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise GenesisError(f"{what}: {value!r} is not valid hex") from None


def _address(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not is_hex_address(value):
        raise GenesisError(f"{what}: {value!r} is not an address")
    return bytes(to_canonical_address(value))


def parse_genesis(doc: Any) -> Genesis:
    """Validate a genesis JSON document and build a `Genesis`."""
    if not isinstance(doc, dict):
        raise GenesisError("the genesis must be a JSON object")
    for required in ("chainId", "timestamp"):
        if required not in doc:
            raise GenesisError(f"the genesis lacks {required!r}")
    chain_id = _int(doc["chainId"], "chainId")
    if not 0 < chain_id < 2**64:
        raise GenesisError("chainId must be between 1 and 2^64-1")
    alloc_doc = doc.get("alloc", {})
    if not isinstance(alloc_doc, dict):
        raise GenesisError("alloc must be an object of address -> account")
    alloc: dict[bytes, Account] = {}
    for key, acct in alloc_doc.items():
        addr = _address(key, f"alloc key {key}")
        if not isinstance(acct, dict):
            raise GenesisError(f"alloc[{key}] must be an object")
        storage_doc = acct.get("storage", {})
        if not isinstance(storage_doc, dict):
            raise GenesisError(f"alloc[{key}].storage must be an object")
        alloc[addr] = Account(
            balance=_int(acct.get("balance", 0), f"alloc[{key}].balance"),
            nonce=_int(acct.get("nonce", 0), f"alloc[{key}].nonce"),
            code=_bytes(acct.get("code", "0x"), f"alloc[{key}].code"),
            storage={
                _int(k, f"alloc[{key}].storage key"): _int(v, f"alloc[{key}].storage[{k}]")
                for k, v in storage_doc.items()
            },
        )
    validators_doc = doc.get("validators", [])
    if not isinstance(validators_doc, list):
        raise GenesisError("validators must be a list")
    validators = []
    for i, v in enumerate(validators_doc):
        if not isinstance(v, dict):
            raise GenesisError(f"validators[{i}] must be an object")
        ckey = _bytes(v.get("consensusKey"), f"validators[{i}].consensusKey")
        if len(ckey) != 32:
            raise GenesisError(f"validators[{i}].consensusKey must be 32 bytes (ed25519)")
        validators.append(
            Validator(
                address=_address(v.get("address"), f"validators[{i}].address"),
                consensus_key=ckey,
                stake=_int(v.get("stake", 0), f"validators[{i}].stake"),
            )
        )
    cdoc = doc.get("consensus", {})
    if not isinstance(cdoc, dict):
        raise GenesisError("consensus must be an object")
    defaults = ConsensusParams()
    consensus = ConsensusParams(
        tau_proposer=_int(cdoc.get("tauProposer", defaults.tau_proposer), "tauProposer"),
        tau_committee=_int(cdoc.get("tauCommittee", defaults.tau_committee), "tauCommittee"),
        threshold_numerator=_int(
            cdoc.get("thresholdNumerator", defaults.threshold_numerator), "thresholdNumerator"
        ),
        threshold_denominator=_int(
            cdoc.get("thresholdDenominator", defaults.threshold_denominator),
            "thresholdDenominator",
        ),
        step_timeout_ms=_int(cdoc.get("stepTimeoutMs", defaults.step_timeout_ms), "stepTimeoutMs"),
        lookback=_int(cdoc.get("lookback", defaults.lookback), "lookback"),
        stake_unit_wei=_int(cdoc.get("stakeUnitWei", defaults.stake_unit_wei), "stakeUnitWei"),
        priority_window_ms=_int(
            cdoc.get("priorityWindowMs", defaults.priority_window_ms), "priorityWindowMs"
        ),
        propose_timeout_ms=_int(
            cdoc.get("proposeTimeoutMs", defaults.propose_timeout_ms), "proposeTimeoutMs"
        ),
        timeout_increase_ms=_int(
            cdoc.get("timeoutIncreaseMs", defaults.timeout_increase_ms), "timeoutIncreaseMs"
        ),
    )
    _check_consensus(consensus, validators)
    gas_limit = _int(doc.get("gasLimit", DEFAULT_GAS_LIMIT), "gasLimit")
    if gas_limit < 5000:
        raise GenesisError("gasLimit must be at least 5000")
    extra = _bytes(doc.get("extraData", "0x"), "extraData")
    if len(extra) > 32:
        raise GenesisError("extraData is capped at 32 bytes")
    tokenomics = _tokenomics(doc["tokenomics"]) if "tokenomics" in doc else None
    return Genesis(
        chain_id=chain_id,
        timestamp=_int(doc["timestamp"], "timestamp"),
        gas_limit=gas_limit,
        base_fee=_int(doc.get("baseFeePerGas", DEFAULT_BASE_FEE), "baseFeePerGas"),
        extra_data=extra,
        alloc=alloc,
        validators=tuple(validators),
        consensus=consensus,
        tokenomics=tokenomics,
    )


def _tokenomics(doc: Any) -> Tokenomics:
    """Validate the `tokenomics` section."""
    if not isinstance(doc, dict):
        raise GenesisError("tokenomics must be an object")
    unknown = sorted(
        set(doc) - {"listingTime", "presaleUnlockStart", "beneficiaries", "presaleGenesis"}
    )
    if unknown:
        raise GenesisError(f"tokenomics: unknown field(s) {', '.join(map(repr, unknown))}")
    if "listingTime" not in doc:
        raise GenesisError("tokenomics lacks 'listingTime'")
    listing = _int(doc["listingTime"], "tokenomics.listingTime")
    presale_start = doc.get("presaleUnlockStart")
    if presale_start is not None:
        presale_start = _int(presale_start, "tokenomics.presaleUnlockStart")
    names = doc.get("beneficiaries")
    if not isinstance(names, dict):
        raise GenesisError("tokenomics.beneficiaries must be an object of allocation -> address")
    beneficiaries: dict[str, bytes] = {}
    for name, value in names.items():
        if name not in ALLOCATION_NAMES:
            raise GenesisError(
                f"tokenomics.beneficiaries: unknown allocation {name!r} "
                f"(give one address for each of {', '.join(VESTED_NAMES)})"
            )
        if name not in VESTED_NAMES:
            holder = "the emission pool" if name == "block_rewards" else "the Airdrop contract"
            raise GenesisError(
                f"tokenomics.beneficiaries: {name} is held by {holder} and takes no beneficiary"
            )
        address = _address(value, f"tokenomics.beneficiaries.{name}")
        if address == bytes(20):
            raise GenesisError(f"tokenomics.beneficiaries.{name} is the zero address")
        beneficiaries[name] = address
    missing = [n for n in VESTED_NAMES if n not in beneficiaries]
    if missing:
        raise GenesisError(f"tokenomics.beneficiaries lacks {', '.join(map(repr, missing))}")
    recipients = doc.get("presaleGenesis", {})
    if not isinstance(recipients, dict):
        raise GenesisError("tokenomics.presaleGenesis must be an object of address -> wei")
    presale_genesis = {
        _address(k, f"tokenomics.presaleGenesis key {k}"): _int(
            v, f"tokenomics.presaleGenesis[{k}]"
        )
        for k, v in recipients.items()
    }
    paid = sum(presale_genesis.values())
    if presale_genesis and paid != PRESALE_GENESIS_PART:
        raise GenesisError(
            f"tokenomics.presaleGenesis adds up to {paid} wei; the presale's genesis part is "
            f"exactly {PRESALE_GENESIS_PART} wei (28,000,000 PVC)"
        )
    return Tokenomics(
        listing_time=listing,
        beneficiaries=beneficiaries,
        presale_unlock_start=presale_start,
        presale_genesis=presale_genesis,
    )


def load_genesis(path: Path) -> Genesis:
    """Read and validate a genesis file."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GenesisError(f"genesis file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis file {path} is not valid JSON: {exc}") from None
    return parse_genesis(doc)


def _check_consensus(params: ConsensusParams, validators: list[Validator]) -> None:
    """Refuse parameters under which agreement would be unsafe or could not run."""
    if params.stake_unit_wei <= 0:
        raise GenesisError("consensus.stakeUnitWei must be positive")
    if params.tau_proposer <= 0 or params.tau_committee <= 0:
        raise GenesisError("consensus.tauProposer and consensus.tauCommittee must be positive")
    num, den = params.threshold_numerator, params.threshold_denominator
    if den <= 0 or not 2 * den <= 3 * num < 3 * den:
        raise GenesisError(
            "consensus threshold must be at least 2/3 and below 1 "
            "(thresholdNumerator / thresholdDenominator); BFT safety needs 2/3"
        )
    if params.priority_window_ms >= params.propose_timeout_ms:
        raise GenesisError("consensus.priorityWindowMs must be below proposeTimeoutMs")
    if min(params.step_timeout_ms, params.priority_window_ms) <= 0:
        raise GenesisError("consensus timeouts must be positive")
    keys = [v.consensus_key for v in validators]
    if len(set(keys)) != len(keys):
        raise GenesisError("two validators share a consensus key")
    for i, v in enumerate(validators):
        if v.stake < params.stake_unit_wei:
            raise GenesisError(
                f"validators[{i}].stake is below one stake unit ({params.stake_unit_wei} wei)"
            )


def dev_genesis(
    timestamp: int, accounts: list[bytes], validator: Validator | None = None
) -> Genesis:
    """The dev chain: chain id 31337, each of `accounts` funded with 10,000 PVC."""
    return Genesis(
        chain_id=DEV_CHAIN_ID,
        timestamp=timestamp,
        alloc={addr: Account(balance=DEV_BALANCE) for addr in accounts},
        validators=(validator,) if validator else (),
    )
