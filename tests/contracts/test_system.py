"""Predeploying contracts into a genesis: constructors run at their final address, state kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import Blockchain, CallRequest, genesis_hash
from powerverse.chain.genesis import Account, Genesis, Validator, dev_genesis, load_genesis
from powerverse.chain.store import LmdbStore
from powerverse.contracts import system
from powerverse.contracts.artifacts import load_artifact
from powerverse.contracts.exceptions import ContractsError
from powerverse.contracts.system import SystemConfig, SystemContract

ARTIFACTS = Path(__file__).parent / "artifacts"
FOUNDATION = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
SUPPLY = 1_000_000 * 10**18
TOKEN_AT = (0x1000).to_bytes(20, "big")
NFT_AT = (0x1001).to_bytes(20, "big")
TOKEN = SystemContract("PVTestToken", TOKEN_AT, lambda cfg: (SUPPLY,))
NFT = SystemContract("PVTestNFT", NFT_AT, lambda cfg: ())
BASE = Genesis(chain_id=31337, timestamp=1_767_225_600, alloc={FOUNDATION: Account(balance=1)})


def _with(contracts: list[SystemContract], base: Genesis = BASE) -> Genesis:
    return system.with_system_contracts(
        base, SystemConfig(foundation=FOUNDATION), contracts=contracts, artifacts_dir=ARTIFACTS
    )


def _call(chain: Blockchain, to: bytes, signature: str, out: list[str], *args: object) -> tuple:
    name, types = signature.split("(")
    arg_types = [t for t in types.rstrip(")").split(",") if t]
    data = keccak(text=signature)[:4] + abi_encode(arg_types, list(args))
    comp = chain.execute_call(CallRequest(to=to, data=data), chain.head)
    assert not comp.is_error, f"{name} failed: {comp.error!r}"
    return tuple(abi_decode(out, bytes(comp.output)))


def test_predeployed_contracts_hold_their_constructors_state(tmp_path: Path) -> None:
    genesis = _with([NFT, TOKEN])
    token = genesis.alloc[TOKEN_AT]
    assert token.nonce == 1  # EIP-161: a created contract starts at nonce 1
    assert token.code == load_artifact("PVTestToken", ARTIFACTS).deployed_bytecode
    assert token.storage  # balances and totalSupply were written by the constructor
    chain = Blockchain(LmdbStore(tmp_path), genesis)
    try:
        assert _call(chain, TOKEN_AT, "totalSupply()", ["uint256"]) == (SUPPLY,)
        # the constructor minted to msg.sender: the foundation deployed it
        assert _call(chain, TOKEN_AT, "balanceOf(address)", ["uint256"], FOUNDATION) == (SUPPLY,)
        assert _call(chain, TOKEN_AT, "symbol()", ["string"]) == ("PVT",)
        assert _call(chain, NFT_AT, "owner()", ["address"]) == ("0x" + FOUNDATION.hex(),)
        assert chain.get_balance(FOUNDATION) == 1  # other allocations untouched
    finally:
        chain.close()


def test_genesis_file_round_trip_keeps_the_hash(tmp_path: Path) -> None:
    genesis = _with([TOKEN, NFT])
    path = tmp_path / "genesis.json"
    genesis.dump(path)
    assert genesis_hash(load_genesis(path)) == genesis_hash(genesis)
    assert genesis_hash(genesis) != genesis_hash(BASE)


def test_predeploy_is_deterministic() -> None:
    assert _with([TOKEN]).alloc == _with([TOKEN]).alloc


def test_no_contracts_changes_nothing() -> None:
    assert _with([]) == BASE


def test_refuses_an_address_the_genesis_already_allocates() -> None:
    taken = Genesis(chain_id=31337, timestamp=1, alloc={TOKEN_AT: Account(balance=5)})
    with pytest.raises(ContractsError, match="already allocates"):
        _with([TOKEN], taken)


def test_refuses_two_contracts_at_one_address() -> None:
    with pytest.raises(ContractsError, match="two system contracts"):
        _with([TOKEN, SystemContract("PVTestNFT", TOKEN_AT, lambda cfg: ())])


def test_wrong_constructor_arguments_are_named() -> None:
    with pytest.raises(ContractsError, match="takes 1 argument"):
        _with([SystemContract("PVTestToken", TOKEN_AT, lambda cfg: ())])
    with pytest.raises(ContractsError, match="bad constructor arguments for PVTestToken"):
        _with([SystemContract("PVTestToken", TOKEN_AT, lambda cfg: ("many",))])


def test_a_reverting_constructor_is_reported() -> None:
    # ERC-20 refuses to mint to the zero address: the deployer is the foundation.
    with pytest.raises(ContractsError, match="constructor of PVTestToken failed"):
        system.with_system_contracts(
            BASE,
            SystemConfig(foundation=b"\x00" * 20),
            contracts=[TOKEN],
            artifacts_dir=ARTIFACTS,
        )


def test_missing_artifact_is_named() -> None:
    with pytest.raises(ContractsError, match="no artifact for contract 'Nope'"):
        _with([SystemContract("Nope", TOKEN_AT, lambda cfg: ())])


def test_registered_addresses_match_the_solidity_library() -> None:
    source = (system.SOURCES_DIR / "SystemAddresses.sol").read_text()
    for name, address in system.SYSTEM_ADDRESSES.items():
        assert f"0x{address.hex()}".lower() in source.lower(), name
    for contract in system.SYSTEM_CONTRACTS:
        assert system.SYSTEM_ADDRESSES[contract.name] == contract.address


def test_committed_system_artifacts_match_a_fresh_build() -> None:
    from powerverse.contracts import build

    problems = build.check(system.SOURCES_DIR, system.ARTIFACTS_DIR)
    assert problems == [], "rebuild with `pv contracts build`: " + "; ".join(problems)


def test_dev_genesis_carries_every_registered_system_contract(tmp_path: Path) -> None:
    from powerverse.node.runner import NodeConfig, resolve_genesis

    genesis = resolve_genesis(NodeConfig(dev=True), tmp_path)
    for contract in system.SYSTEM_CONTRACTS:
        acct = genesis.alloc[contract.address]
        assert acct.code, f"{contract.name} has no code in the dev genesis"
        assert acct.nonce == 1


def test_genesis_validators_are_bonded_in_staking(tmp_path: Path) -> None:
    from powerverse.node.runner import NodeConfig, resolve_genesis

    genesis = resolve_genesis(NodeConfig(dev=True), tmp_path / "a")
    (validator,) = genesis.validators
    assert genesis.alloc[system.STAKING].balance == validator.stake  # minted into the contract
    chain = Blockchain(LmdbStore(tmp_path / "db"), genesis)
    try:
        accounts, keys, stakes = _call(
            chain, system.STAKING, "activeValidators()", ["address[]", "bytes32[]", "uint256[]"]
        )
        assert accounts == ("0x" + validator.address.hex(),)
        assert keys == (validator.consensus_key,)
        assert stakes == (validator.stake,)
    finally:
        chain.close()


def test_constructors_run_in_block_zero_at_the_genesis_time(tmp_path: Path) -> None:
    """Not at the wall clock: the genesis is the same whenever it is built, and what the
    constructors record at genesis (a genesis validator's voting-power checkpoint) comes before
    block 1, so the first delegation can add a later checkpoint."""
    past = 1_700_000_000  # years before the wall clock
    validator = Validator(FOUNDATION, b"\x11" * 32, 1000 * 10**18)
    base = dev_genesis(past, [FOUNDATION], validator)
    genesis = system.with_system_contracts(base, system.dev_system_config())
    again = system.with_system_contracts(base, system.dev_system_config())
    assert genesis_hash(genesis) == genesis_hash(again)
    chain = Blockchain(LmdbStore(tmp_path), genesis)
    try:
        votes = (0x3000).to_bytes(20, "big")
        (checkpoint,) = _call(
            chain, votes, "checkpoints(address,uint32)", ["(uint48,uint208)"], FOUNDATION, 0
        )
        assert checkpoint == (past, 1000 * 10**18)
    finally:
        chain.close()
