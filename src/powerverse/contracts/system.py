"""The system contracts predeployed in every genesis, and how their genesis state is made.

Genesis cannot run constructors, so :func:`system_alloc` runs each registered contract's
constructor in a scratch EVM *at its final address* (in address order, so a constructor can call
contracts registered at lower addresses), records the code, nonce and every storage slot, and
checks that a genesis built from those allocations has exactly the scratch EVM's state root.
The composition roots (`pv node --dev`, `pv genesis`, `pv devnet`) add the result to the genesis
they build with :func:`with_system_contracts`.

A genesis with a `tokenomics` section also gets the tokenomics allocations (docs/tokenomics.md):
the emission pool (a plain account at 0x…2000 holding the block rewards), one `Vesting` contract
per vested allocation and the `Airdrop` (0x…2001 to 0x…2009), and the presale beneficiary
receives what the other genesis balances leave of the presale's genesis part, so that all genesis
balances add up to exactly the total supply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.vm.message import Message
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_typing import Address
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import chain_class, genesis_params, genesis_state
from powerverse.chain.genesis import Account, Genesis, Tokenomics, Validator
from powerverse.contracts.addresses import (
    AIRDROP,
    ARBITRATION,
    DAO_ADDRESSES,
    DAO_GOVERNOR,
    DAO_PROJECTS,
    DAO_PROPOSALS,
    DAO_TIMELOCK,
    DID_REGISTRY,
    DIVIDEND_POOL,
    EMISSION_POOL,
    MARKET,
    ORDERS,
    PLATFORM_ADMIN,
    REPUTATION,
    RESOURCE_NFT,
    REVIEW_COMMITTEE,
    STAKING,
    SYSTEM_ADDRESSES,
    TOKENOMICS_ADDRESSES,
    VOTES_PVC,
)
from powerverse.contracts.artifacts import ARTIFACTS_DIR, SOURCES_DIR, load_artifact
from powerverse.contracts.exceptions import ContractsError
from powerverse.crypto.keys import dev_accounts
from powerverse.economics.allocations import (
    AIRDROP_CLAIM,
    AIRDROP_MAX_CLAIMS,
    PRESALE_GENESIS_PART,
    VESTED_NAMES,
    TokenomicsParams,
    allocation,
    vesting_installments,
)
from powerverse.economics.constants import PVC, TOTAL_SUPPLY

__all__ = [
    "AIRDROP",
    "ARBITRATION",
    "ARTIFACTS_DIR",
    "DAO_ADDRESSES",
    "DAO_GOVERNOR",
    "DAO_PROJECTS",
    "DAO_PROPOSALS",
    "DAO_TIMELOCK",
    "DEV_BENEFICIARY_INDEX",
    "DID_REGISTRY",
    "DIVIDEND_POOL",
    "EMISSION_POOL",
    "MARKET",
    "ORDERS",
    "PLATFORM_ADMIN",
    "REPUTATION",
    "RESOURCE_NFT",
    "REVIEW_COMMITTEE",
    "SOURCES_DIR",
    "STAKING",
    "SYSTEM_ADDRESSES",
    "SYSTEM_CONTRACTS",
    "TOKENOMICS_ADDRESSES",
    "TOKENOMICS_CONTRACTS",
    "VOTES_PVC",
    "SystemConfig",
    "SystemContract",
    "dev_system_config",
    "dev_tokenomics",
    "genesis_role_changes",
    "system_alloc",
    "system_contract_addresses",
    "with_system_contracts",
]


CONSTRUCTOR_GAS = 1_000_000_000
"""Gas for one constructor in the scratch EVM (no block gas limit applies to genesis)."""


@dataclass(frozen=True, kw_only=True)
class SystemConfig:
    """Who holds the roles at genesis, and the tunables the constructors take.

    `governance` holds the governance roles of the market contracts (ResourceNFT, Market,
    Orders, Reputation, Arbitration, PlatformAdmin): by default the DAO timelock when the DAO
    contracts are deployed, else the foundation. `foundation` keeps the operational roles
    (verifier, platform admin, arbiter) and Staking's; with `dev_roles` (dev and devnet only) it
    also keeps the governance roles beside the DAO. `treasury` receives fees. Durations are in
    seconds, fees in basis points.
    """

    foundation: bytes
    treasury: bytes | None = None
    governance: bytes | None = None
    dev_roles: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # The genesis validators, bonded in Staking at genesis (with_system_contracts fills them in
    # from the genesis; their stake is minted into the Staking contract's balance).
    validators: tuple[Validator, ...] = ()
    # The genesis's tokenomics section and start time (with_system_contracts fills them in);
    # the Vesting and Airdrop constructors read them.
    tokenomics: Tokenomics | None = None
    genesis_time: int = 0
    validator_commission_bps: int = 500
    # Staking (dev defaults; a production genesis sets e.g. a 21-day unbonding period).
    staking_min_self_stake: int = 10**18
    staking_unbonding_period: int = 86_400
    staking_jail_period: int = 3_600
    staking_max_commission_bps: int = 2_000
    staking_max_commission_change_bps: int = 100
    staking_commission_change_interval: int = 86_400
    staking_max_validators: int = 1_000
    # Market (dev defaults): platform fee, provider confirm window, heartbeat period and grace.
    market_fee_bps: int = 250
    market_confirm_window: int = 3_600
    market_heartbeat_interval: int = 300
    market_heartbeat_grace: int = 600
    # Orders: platform fee, review window of MANUAL task results. Reputation: 10,000 units per
    # star; the gate (0 = none), the Bayesian prior (3.5 stars weighing 5 reviews), and how many
    # one-star reviews a failed delivery counts as.
    orders_fee_bps: int = 250
    orders_review_window: int = 86_400
    reputation_min: int = 20_000
    reputation_prior_mean: int = 35_000
    reputation_prior_weight: int = 5
    reputation_failure_weight: int = 2
    # DividendPool: heartbeat slot length (a device is online in a 30-day epoch with heartbeats
    # in 90 % of its slots).
    dividend_slot_length: int = 3_600
    # The DAO (docs/dao.md): vote (delay before the snapshot, period, quorum in percent of the
    # vPVC supply, pass threshold in basis points of For + Against), timelock delay; review
    # committee (genesis members, default the foundation; seats, term, election period, votes a
    # candidate needs); proposals (deposit, review window, minimum reviews and average score);
    # the supervision group of funded projects (default the foundation).
    dao_voting_delay: int = 86_400
    dao_voting_period: int = 7 * 86_400
    dao_quorum_percent: int = 4
    dao_pass_threshold_bps: int = 5_000
    dao_timelock_delay: int = 2 * 86_400
    dao_committee: tuple[bytes, ...] = ()
    dao_committee_size: int = 5
    dao_term_length: int = 180 * 86_400
    dao_election_period: int = 7 * 86_400
    dao_min_candidate_votes: int = 1_000 * 10**18
    dao_proposal_deposit: int = 1_000 * 10**18
    dao_review_window: int = 7 * 86_400
    dao_min_reviews: int = 1
    dao_min_score: int = 60
    dao_supervisors: tuple[bytes, ...] = ()

    def staking_params(self) -> tuple[int, ...]:
        """`Staking.Params` in ABI order."""
        return (
            self.staking_min_self_stake,
            self.staking_unbonding_period,
            self.staking_jail_period,
            self.staking_max_commission_bps,
            self.staking_max_commission_change_bps,
            self.staking_commission_change_interval,
            self.staking_max_validators,
        )

    @property
    def governor_address(self) -> bytes:
        """Who the market contracts' constructors make their admin (see `governance`)."""
        return self.governance if self.governance is not None else self.foundation

    @property
    def fee_recipient(self) -> bytes:
        """The treasury, or the foundation when none is set."""
        return self.treasury if self.treasury is not None else self.foundation

    def tokenomics_params(self) -> TokenomicsParams:
        """The schedule parameters; ContractsError when the genesis has no tokenomics."""
        if self.tokenomics is None:
            raise ContractsError(
                "the tokenomics contracts need a genesis with a tokenomics section"
            )
        return self.tokenomics.params(self.genesis_time)

    def beneficiary(self, name: str) -> bytes:
        """The address allocation `name`'s Vesting contract pays."""
        if self.tokenomics is None:
            raise ContractsError(
                "the tokenomics contracts need a genesis with a tokenomics section"
            )
        return self.tokenomics.beneficiaries[name]


@dataclass(frozen=True)
class SystemContract:
    """A contract predeployed at a fixed address; `args` builds its constructor arguments."""

    name: str
    address: bytes
    args: Callable[[SystemConfig], tuple[Any, ...]]
    value: Callable[[SystemConfig], int] | None = None
    """Wei the constructor receives (minted at genesis), e.g. the genesis validators' stake."""
    artifact: str | None = None
    """The compiled contract, when it is not `name` (several Vesting contracts share one)."""

    @property
    def artifact_name(self) -> str:
        """The artifact whose bytecode is deployed."""
        return self.artifact or self.name


SYSTEM_CONTRACTS: tuple[SystemContract, ...] = (
    SystemContract(
        "Staking",
        STAKING,
        lambda c: (
            c.foundation,
            c.fee_recipient,
            c.staking_params(),
            [
                (v.address, v.consensus_key, c.validator_commission_bps, v.stake)
                for v in c.validators
            ],
        ),
        value=lambda c: sum(v.stake for v in c.validators),
    ),
    SystemContract("ResourceNFT", RESOURCE_NFT, lambda c: (c.governor_address,)),
    SystemContract(
        "Market",
        MARKET,
        lambda c: (
            c.governor_address,
            c.fee_recipient,
            c.market_fee_bps,
            c.market_confirm_window,
            c.market_heartbeat_interval,
            c.market_heartbeat_grace,
        ),
    ),
    SystemContract(
        "Orders",
        ORDERS,
        lambda c: (c.governor_address, c.fee_recipient, c.orders_fee_bps, c.orders_review_window),
    ),
    SystemContract(
        "Reputation",
        REPUTATION,
        lambda c: (
            c.governor_address,
            c.reputation_min,
            c.reputation_prior_mean,
            c.reputation_prior_weight,
            c.reputation_failure_weight,
        ),
    ),
    SystemContract("Arbitration", ARBITRATION, lambda c: (c.governor_address,)),
    SystemContract("DIDRegistry", DID_REGISTRY, lambda c: ()),
    SystemContract("PlatformAdmin", PLATFORM_ADMIN, lambda c: (c.governor_address,)),
    # The DAO (docs/dao.md). The market contracts above make the timelock (0x…3001) their admin;
    # its constructor applies the genesis role table (`genesis_role_changes`).
    SystemContract(
        "VotesPVC",
        VOTES_PVC,
        lambda c: ([v.address for v in c.validators], [v.stake for v in c.validators]),
    ),
    SystemContract(
        "DaoTimelock",
        DAO_TIMELOCK,
        lambda c: (c.dao_timelock_delay, DAO_GOVERNOR, genesis_role_changes(c)),
    ),
    SystemContract(
        "DaoGovernor",
        DAO_GOVERNOR,
        lambda c: (
            c.dao_voting_delay,
            c.dao_voting_period,
            c.dao_quorum_percent,
            c.dao_pass_threshold_bps,
        ),
    ),
    SystemContract(
        "ReviewCommittee",
        REVIEW_COMMITTEE,
        lambda c: (
            list(c.dao_committee or (c.foundation,)),
            (
                c.dao_committee_size,
                c.dao_term_length,
                c.dao_election_period,
                c.dao_min_candidate_votes,
            ),
        ),
    ),
    SystemContract(
        "DaoProposals",
        DAO_PROPOSALS,
        lambda c: (
            (c.dao_proposal_deposit, c.dao_review_window, c.dao_min_reviews, c.dao_min_score),
        ),
    ),
    SystemContract(
        "DaoProjects", DAO_PROJECTS, lambda c: (list(c.dao_supervisors or (c.foundation,)),)
    ),
)
"""Every predeployed contract. Each contract's author registers it here."""

DEFAULT_ADMIN_ROLE = b"\x00" * 32
_OPERATIONAL_ROLES: tuple[tuple[bytes, str], ...] = (
    (RESOURCE_NFT, "VERIFIER_ROLE"),
    (MARKET, "ARBITER_ROLE"),
    (ARBITRATION, "ARBITER_ROLE"),
    (PLATFORM_ADMIN, "ADMIN_ROLE"),
)
"""Roles the foundation keeps when the DAO governs (the market contracts' constructors give
every role to their admin; the timelock hands these on at genesis)."""
_GOVERNANCE_ROLES: tuple[tuple[bytes, str], ...] = (
    *((a, "GOVERNANCE_ROLE") for a in (RESOURCE_NFT, MARKET, ORDERS, REPUTATION, ARBITRATION)),
    (PLATFORM_ADMIN, "PAUSER_ROLE"),
)
"""The governance roles the DAO holds (and, with `dev_roles`, the foundation beside it)."""


def genesis_role_changes(config: SystemConfig) -> list[tuple[bytes, bytes, bytes, bool]]:
    """The timelock's genesis role table, as `DaoTimelock.RoleChange` tuples (target, role,
    account, revoke): the foundation's operational roles moved from the timelock to the
    foundation, and with `dev_roles` the governance roles (and DEFAULT_ADMIN_ROLE) granted to
    the foundation too. Empty unless the timelock is the market contracts' admin; the timelock
    skips targets that are not deployed."""
    if config.governor_address != DAO_TIMELOCK:
        return []
    changes: list[tuple[bytes, bytes, bytes, bool]] = []
    for target, name in _OPERATIONAL_ROLES:
        role = keccak(text=name)
        changes += [(target, role, config.foundation, False), (target, role, DAO_TIMELOCK, True)]
    if config.dev_roles:
        targets = sorted({t for t, _ in _GOVERNANCE_ROLES})
        changes += [(t, DEFAULT_ADMIN_ROLE, config.foundation, False) for t in targets]
        changes += [(t, keccak(text=n), config.foundation, False) for t, n in _GOVERNANCE_ROLES]
    return changes


def _vesting(name: str) -> SystemContract:
    """The Vesting contract of allocation `name`: its installments, funded with their sum."""

    def rows(c: SystemConfig) -> list[tuple[int, int]]:
        return vesting_installments(name, c.tokenomics_params())

    label = "".join(part.capitalize() for part in name.split("_"))
    return SystemContract(
        f"{label}Vesting",
        TOKENOMICS_ADDRESSES[name],
        lambda c: (c.beneficiary(name), [t for t, _ in rows(c)], [a for _, a in rows(c)]),
        value=lambda c: sum(a for _, a in rows(c)),
        artifact="Vesting",
    )


TOKENOMICS_CONTRACTS: tuple[SystemContract, ...] = (
    *(_vesting(name) for name in VESTED_NAMES),
    SystemContract(
        "Airdrop",
        AIRDROP,
        lambda c: (c.foundation, AIRDROP_CLAIM, AIRDROP_MAX_CLAIMS),
        value=lambda c: AIRDROP_CLAIM * AIRDROP_MAX_CLAIMS,
    ),
    SystemContract(
        "DividendPool",
        DIVIDEND_POOL,
        lambda c: (c.foundation, c.tokenomics_params().listing_time, c.dividend_slot_length),
    ),
)
"""Predeployed when the genesis has a tokenomics section (docs/tokenomics.md)."""


def _constructor_data(contract: SystemContract, config: SystemConfig, artifacts_dir: Path) -> bytes:
    artifact = load_artifact(contract.artifact_name, artifacts_dir)
    if not artifact.bytecode:
        raise ContractsError(f"{contract.name} is abstract or an interface: it has no bytecode")
    inputs = artifact.constructor_inputs()
    args = contract.args(config)
    if len(args) != len(inputs):
        raise ContractsError(
            f"{contract.name}'s constructor takes {len(inputs)} argument(s), "
            f"the registry gives {len(args)}"
        )
    types = [_abi_type(i) for i in inputs]
    try:
        return artifact.bytecode + abi_encode(types, list(args))
    except (EncodingError, TypeError, ValueError) as exc:
        raise ContractsError(f"bad constructor arguments for {contract.name}: {exc}") from exc


def _abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def system_alloc(
    config: SystemConfig,
    *,
    chain_id: int,
    timestamp: int,
    contracts: Iterable[SystemContract] | None = None,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> dict[bytes, Account]:
    """Genesis allocations holding the deployed `contracts` (default: every registered one)."""
    chosen = sorted(SYSTEM_CONTRACTS if contracts is None else contracts, key=lambda c: c.address)
    if not chosen:
        return {}
    if config.governance is None and any(c.address == DAO_TIMELOCK for c in chosen):
        config = replace(config, governance=DAO_TIMELOCK)
    seen: set[bytes] = set()
    for c in chosen:
        if c.address in seen:
            raise ContractsError(f"two system contracts at {to_checksum_address(c.address)}")
        seen.add(c.address)
    base = Genesis(chain_id=chain_id, timestamp=timestamp)
    chain = chain_class(chain_id).from_genesis(AtomicDB(MemoryDB()), genesis_params(base), {})
    # Constructors run in block 0 at the genesis time (block.timestamp, block.number): the
    # genesis is then the same whenever it is built, and checkpoints made at genesis (VotesPVC)
    # come before every later block.
    vm = chain.get_vm(chain.get_canonical_head())
    state = vm.state
    deployer = Address(config.foundation)
    for contract in chosen:
        value = contract.value(config) if contract.value is not None else 0
        state.delta_balance(deployer, value)  # minted for this constructor
        message = Message(
            gas=CONSTRUCTOR_GAS,
            to=CREATE_CONTRACT_ADDRESS,
            sender=deployer,
            value=value,
            data=b"",
            code=_constructor_data(contract, config, artifacts_dir),
            create_address=Address(contract.address),
        )
        context = state.get_transaction_context_class()(gas_price=0, origin=deployer)
        computation = state.computation_class.apply_create_message(state, message, context)
        if computation.is_error:
            raise ContractsError(
                f"the constructor of {contract.name} failed: {computation.error!r} "
                f"(output 0x{bytes(computation.output).hex()})"
            )
    # py-evm lists no written slots publicly; the state-root check below catches any miss.
    stores = state._account_db._account_stores  # type: ignore[attr-defined]
    alloc: dict[bytes, Account] = {}
    for address in sorted(seen | {a for a in stores if a != deployer}):
        slots = stores[Address(address)].get_accessed_slots() if address in stores else frozenset()
        storage = {s: v for s in sorted(slots) if (v := state.get_storage(Address(address), s))}
        alloc[address] = Account(
            balance=state.get_balance(Address(address)),
            nonce=state.get_nonce(Address(address)),
            code=bytes(state.get_code(Address(address))),
            storage=storage,
        )
    if state.account_exists(deployer):
        if state.get_nonce(deployer) or state.get_balance(deployer) or state.get_code(deployer):
            raise ContractsError("a constructor changed the deployer's account")
        state.delete_account(deployer)
    _check_root(bytes(state.make_state_root()), alloc, base)
    return alloc


def _check_root(expected: bytes, alloc: dict[bytes, Account], base: Genesis) -> None:
    """A genesis made of `alloc` must reproduce the scratch EVM's state exactly."""
    rebuilt = chain_class(base.chain_id).from_genesis(
        AtomicDB(MemoryDB()), genesis_params(base), genesis_state(replace(base, alloc=alloc))
    )
    got = bytes(rebuilt.get_canonical_head().state_root)
    if got != expected:
        raise ContractsError(
            "the recorded system-contract state does not reproduce the constructors' state root "
            f"(0x{got.hex()} != 0x{expected.hex()}); a storage slot was missed"
        )


def with_system_contracts(
    genesis: Genesis,
    config: SystemConfig,
    *,
    contracts: Iterable[SystemContract] | None = None,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> Genesis:
    """`genesis` with the system contracts added to its allocations.

    With a tokenomics section the tokenomics allocations are added too, and the presale
    beneficiary receives what the genesis's other balances leave of the presale's genesis part
    (ContractsError if they exceed it). Refuses a genesis that already allocates one of these
    addresses.
    """
    if not config.validators:
        config = replace(config, validators=genesis.validators)
    chosen = list(SYSTEM_CONTRACTS if contracts is None else contracts)
    if genesis.tokenomics is not None:
        config = replace(config, tokenomics=genesis.tokenomics, genesis_time=genesis.timestamp)
        chosen += TOKENOMICS_CONTRACTS
    alloc = system_alloc(
        config,
        chain_id=genesis.chain_id,
        timestamp=genesis.timestamp,
        contracts=chosen,
        artifacts_dir=artifacts_dir,
    )
    if genesis.tokenomics is not None:
        alloc[EMISSION_POOL] = Account(balance=allocation("block_rewards").total)
    clash = sorted(set(alloc) & set(genesis.alloc))
    if clash:
        raise ContractsError(
            "the genesis already allocates system-contract address(es) "
            + ", ".join(to_checksum_address(a) for a in clash)
        )
    merged = replace(genesis, alloc={**genesis.alloc, **alloc})
    return _pay_presale_genesis_part(merged) if genesis.tokenomics is not None else merged


def _pay_presale_genesis_part(genesis: Genesis) -> Genesis:
    """Give the presale beneficiary what the other genesis balances leave of the presale's
    genesis part, and record every balance paid from that part."""
    assert genesis.tokenomics is not None
    pools = set(TOKENOMICS_ADDRESSES.values())
    spent = sum(a.balance for addr, a in genesis.alloc.items() if addr not in pools)
    if spent > PRESALE_GENESIS_PART:
        raise ContractsError(
            f"the genesis balances outside the tokenomics pools (accounts, validator stakes) "
            f"total {spent / PVC:,.6f} PVC, more than the presale's genesis part "
            f"({PRESALE_GENESIS_PART // PVC:,} PVC) they are paid from"
        )
    beneficiary = genesis.tokenomics.beneficiaries["presale"]
    alloc = dict(genesis.alloc)
    if beneficiary in pools:
        raise ContractsError("the presale beneficiary cannot be a tokenomics pool address")
    held = alloc.get(beneficiary, Account())
    alloc[beneficiary] = replace(held, balance=held.balance + PRESALE_GENESIS_PART - spent)
    paid = {a: acct.balance for a, acct in alloc.items() if a not in pools and acct.balance}
    tokenomics = replace(genesis.tokenomics, presale_genesis=paid)
    result = replace(genesis, alloc=alloc, tokenomics=tokenomics)
    if result.total_balance() != TOTAL_SUPPLY:
        raise ContractsError(
            f"the genesis balances add up to {result.total_balance()} wei, "
            f"not the total supply {TOTAL_SUPPLY}"
        )
    return result


def dev_system_config() -> SystemConfig:
    """Dev and devnet: the first dev account is the foundation and the treasury and keeps the
    governance roles beside the DAO (`dev_roles`); dev accounts 1-3 are the review committee,
    account 4 the supervision group; the DAO's periods are minutes (docs/dao.md)."""
    accounts = dev_accounts()
    return SystemConfig(
        foundation=accounts[0].address,
        dev_roles=True,
        dao_voting_delay=60,
        dao_voting_period=600,
        dao_timelock_delay=60,
        dao_committee=tuple(a.address for a in accounts[1:4]),
        dao_committee_size=3,
        dao_term_length=30 * 86_400,
        dao_election_period=600,
        dao_min_candidate_votes=10**18,
        dao_proposal_deposit=10 * 10**18,
        dao_review_window=600,
        dao_min_reviews=2,
        dao_min_score=50,
        dao_supervisors=(accounts[4].address,),
    )


DEV_BENEFICIARY_INDEX: dict[str, int] = {name: 20 + i for i, name in enumerate(VESTED_NAMES)}
"""Dev and devnet beneficiaries: dev-mnemonic accounts 20..27 (past the 20 funded ones, which keep
exactly 10,000 PVC each), in table order: seed 20, angel 21, series_a 22, presale 23, team 24,
compliance_advisors 25, operations_advisors 26, foundation 27."""


def dev_tokenomics(listing_time: int) -> Tokenomics:
    """The dev chains' tokenomics section: listed at `listing_time` (the genesis time)."""
    accounts = dev_accounts(count=max(DEV_BENEFICIARY_INDEX.values()) + 1)
    return Tokenomics(
        listing_time=listing_time,
        beneficiaries={n: accounts[i].address for n, i in DEV_BENEFICIARY_INDEX.items()},
    )


def system_contract_addresses() -> dict[str, str]:
    """Registered contract name -> checksummed address (for docs and `pv_nodeInfo`)."""
    return {c.name: to_checksum_address(c.address) for c in SYSTEM_CONTRACTS}
