"""Block rewards credited by the chain (chain/rewards.py) on the dev genesis with the system
contracts: the emission pool pays exactly what accrued, 3% to the dividend pool, a validator's
part into Staking (commission to the operator, the rest to the delegators pro rata), and nothing
more than the schedule ever leaves the pool."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_typing import Address
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import Blockchain, CallRequest
from powerverse.chain.blockcodec import decode_block_attached, encode_block
from powerverse.chain.exceptions import InvalidBlock
from powerverse.chain.executor import pooled_from_raw
from powerverse.chain.genesis import DEFAULT_STAKE, Genesis, Validator, dev_genesis
from powerverse.chain.rewards import (
    DIVIDEND_POOL,
    EMISSION_POOL,
    PAID_UNTIL_SLOT,
    STAKING,
    SYSTEM_CALLER,
    Payee,
    RewardClaim,
)
from powerverse.chain.store import LmdbStore
from powerverse.chain.txpool import PooledTx
from powerverse.contracts.system import dev_system_config, dev_tokenomics, with_system_contracts
from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.crypto.keys import dev_accounts
from powerverse.economics.emission import emission_start, emitted

pytestmark = pytest.mark.slow

DAY = 86_400
T0 = 1_767_225_600  # the genesis time and listing time
START = emission_start(T0)
VALIDATOR = dev_accounts()[1]
VKEY = ConsensusKey.from_seed(b"\x11" * 32)
OTHER = ConsensusKey.from_seed(b"\x22" * 32)  # a key no validator holds


def _genesis() -> Genesis:
    validator = Validator(VALIDATOR.address, VKEY.public_key, DEFAULT_STAKE)
    genesis = dev_genesis(T0, [a.address for a in dev_accounts()], validator)
    genesis = replace(genesis, tokenomics=dev_tokenomics(T0))
    return with_system_contracts(genesis, dev_system_config())


@pytest.fixture(scope="module")
def genesis() -> Genesis:
    return _genesis()


@pytest.fixture
def chain(tmp_path: Path, genesis: Genesis) -> Iterator[Blockchain]:
    store = LmdbStore(tmp_path / "data", sole_writer=True)
    chain = Blockchain(store, genesis)
    try:
        yield chain
    finally:
        chain.close()


def _balance(chain: Blockchain, address: bytes) -> int:
    return chain.get_balance(address)


def _paid_until(chain: Blockchain) -> int:
    return int(chain.state_at(chain.head).get_storage(Address(EMISSION_POOL), PAID_UNTIL_SLOT))


def _call(chain: Blockchain, signature: str, types: list[str], args: list[Any], out: str) -> Any:
    data = keccak(text=signature)[:4] + abi_encode(types, args)
    result = chain.execute_call(CallRequest(to=STAKING, data=data), chain.head)
    return abi_decode([out], bytes(result.output))[0]


def _owed(chain: Blockchain, account: bytes) -> int:
    return int(_call(chain, "owed(address)", ["address"], [account], "uint256"))


def _delegation(chain: Blockchain, delegator: bytes) -> int:
    return int(
        _call(
            chain,
            "delegationOf(address,address)",
            ["address", "address"],
            [VALIDATOR.address, delegator],
            "uint256",
        )
    )


def _total_bonded(chain: Blockchain) -> int:
    return int(_call(chain, "totalBonded()", [], [], "uint256"))


def _claim(until: int, *committee: tuple[bytes, int]) -> RewardClaim:
    return RewardClaim(
        until=until,
        proposer=Payee(VKEY.public_key, VALIDATOR.address),
        committee=tuple((Payee(k, VALIDATOR.address), w) for k, w in committee),
    )


def _commit(chain: Blockchain, timestamp: int, claim: RewardClaim | None, attachment: bytes) -> Any:
    built = chain.propose_block(
        [],
        timestamp=timestamp,
        coinbase=VALIDATOR.address,
        reward=claim,
        attachment=attachment,
    )
    return chain.commit_pending(bytes(built.block.hash), b"")


def test_dev_blocks_pay_their_own_reward_to_the_coinbase(chain: Blockchain) -> None:
    coinbase = dev_accounts()[5].address
    chain.build_block([], timestamp=START - 10, coinbase=coinbase)  # before emission: nothing
    assert chain.reward_of(bytes(chain.head.hash)) is None
    pool0, div0, cb0 = (_balance(chain, a) for a in (EMISSION_POOL, DIVIDEND_POOL, coinbase))
    times = [START + 7, START + 19, START + 3 * DAY, START + 3 * DAY + 1]
    paid = 0
    for t in times:
        before = _paid_until(chain)
        chain.build_block([], timestamp=t, coinbase=coinbase)
        plan = chain.reward_of(bytes(chain.head.hash))
        assert plan is not None and plan.until == t and plan.since == before
        assert plan.total == emitted(t, T0) - emitted(before, T0)
        assert plan.dividend == plan.total * 3 // 100
        assert plan.proposer_amount == plan.total - plan.dividend and plan.committee == ()
        assert _paid_until(chain) == t
        paid += plan.total
    assert paid == emitted(times[-1], T0)  # every second paid once
    assert pool0 - _balance(chain, EMISSION_POOL) == paid
    dividends = _balance(chain, DIVIDEND_POOL) - div0
    assert dividends == sum(
        p.dividend for p in map(chain.reward_of, _hashes(chain, len(times))) if p is not None
    )
    assert _balance(chain, coinbase) - cb0 == paid - dividends


def _hashes(chain: Blockchain, count: int) -> list[bytes]:
    return [bytes(chain.header_by_number(chain.height - i).hash) for i in range(count)]


def test_a_validator_reward_goes_into_staking_shared_with_delegators(chain: Blockchain) -> None:
    # dev account 6 delegates as much as the validator's self-stake: each owns half the pool
    delegator = Account.from_key(dev_accounts()[6].private_key)
    data = keccak(text="delegate(address)")[:4] + abi_encode(["address"], [VALIDATOR.address])
    tx = delegator.sign_transaction(
        {
            "to": "0x" + STAKING.hex(),
            "value": DEFAULT_STAKE,
            "data": data,
            "gas": 300_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 0,
            "nonce": 0,
            "chainId": chain.chain_id,
            "type": 2,
        }
    )
    raw = bytes(tx.raw_transaction)
    ptx: PooledTx = pooled_from_raw(raw, bytes.fromhex(delegator.address[2:]))
    chain.build_block([ptx], timestamp=START - 100, coinbase=VALIDATOR.address)
    assert _delegation(chain, bytes.fromhex(delegator.address[2:])) == DEFAULT_STAKE

    staking0, bonded0 = _balance(chain, STAKING), _total_bonded(chain)
    owed0, treasury_owed0 = _owed(chain, VALIDATOR.address), _owed(chain, _treasury(chain))
    until = START + 1000
    claim = _claim(until, (VKEY.public_key, 30), (OTHER.public_key, 10))
    _commit(chain, until + 5, claim, b"certificate bytes")
    plan = chain.reward_of(bytes(chain.head.hash))
    assert plan is not None and plan.total == emitted(until, T0)
    credits = {p.key: a for p, a in plan.credits()}
    mine, stranger = credits[VKEY.public_key], credits[OTHER.public_key]
    assert mine + stranger + plan.dividend == plan.total
    validators = plan.total - plan.total * 3 // 100
    committee = validators - validators * 2_000 // 10_000  # proposer 20%, committee 80%
    assert stranger == committee * 10 // 40  # its vote weight: 10 of 40
    # everything for validators is in Staking's balance, and accounted
    assert _balance(chain, STAKING) - staking0 == mine + stranger
    commission = mine * 500 // 10_000  # the dev validators' commission
    assert _owed(chain, VALIDATOR.address) - owed0 == commission
    assert _total_bonded(chain) - bonded0 == mine - commission
    # the unknown key's part went to the treasury (to withdraw), nothing was lost
    assert _owed(chain, _treasury(chain)) - treasury_owed0 == stranger
    # the two delegations grew by the same amount (equal shares), the rounding dust stays
    grown = _delegation(chain, bytes.fromhex(delegator.address[2:])) - DEFAULT_STAKE
    assert grown == _delegation(chain, VALIDATOR.address) - DEFAULT_STAKE
    assert 0 <= (mine - commission) - 2 * grown <= 1


def _treasury(chain: Blockchain) -> bytes:
    return bytes.fromhex(_call(chain, "treasury()", [], [], "address")[2:])


def test_the_header_commits_to_the_attachment_and_a_peer_pays_the_same(
    tmp_path: Path, chain: Blockchain, genesis: Genesis
) -> None:
    until = START + 500
    claim = _claim(until, (VKEY.public_key, 7))
    built = chain.propose_block(
        [], timestamp=until + 1, coinbase=VALIDATOR.address, reward=claim, attachment=b"cert"
    )
    assert bytes(built.block.header.parent_beacon_block_root) == keccak(b"cert")
    wire = encode_block(built.block.header, built.tx_payloads, built.attachment)
    header, payloads, attachment = decode_block_attached(wire)
    assert attachment == b"cert"
    peer = Blockchain(LmdbStore(tmp_path / "peer", sole_writer=True), genesis)
    try:
        # the same claim and attachment: the same block, byte for byte
        again = peer.execute_block(header, payloads, reward=claim, attachment=attachment)
        assert again.block.hash == built.block.hash
        peer.discard_pending()
        # another attachment than the header commits to
        with pytest.raises(InvalidBlock, match="parent_beacon_block_root"):
            peer.execute_block(header, payloads, reward=claim, attachment=b"other")
        # another claim (more weight for someone else) gives another state root
        other = replace(claim, until=until - 100)
        with pytest.raises(InvalidBlock, match="state root"):
            peer.execute_block(header, payloads, reward=other, attachment=attachment)
        # no claim at all for a block that paid one
        with pytest.raises(InvalidBlock):
            peer.execute_block(header, payloads)
    finally:
        peer.close()


def test_nothing_is_paid_twice_and_a_stale_claim_pays_nothing(chain: Blockchain) -> None:
    until = START + 2 * DAY
    _commit(chain, until + 1, _claim(until), b"c1")
    first = chain.reward_of(bytes(chain.head.hash))
    assert first is not None and _paid_until(chain) == until
    pool = _balance(chain, EMISSION_POOL)
    _commit(chain, until + 2, _claim(until), b"c2")  # the same interval again
    assert chain.reward_of(bytes(chain.head.hash)) is None
    _commit(chain, until + 3, _claim(until - 50), b"c3")  # an older one
    assert chain.reward_of(bytes(chain.head.hash)) is None
    assert _balance(chain, EMISSION_POOL) == pool and _paid_until(chain) == until


def test_only_the_chain_can_credit_rewards(chain: Blockchain) -> None:
    data = keccak(text="creditRewards(bytes32[],uint256[])")[:4] + abi_encode(
        ["bytes32[]", "uint256[]"], [[VKEY.public_key], [10**18]]
    )
    stranger = CallRequest(sender=dev_accounts()[7].address, to=STAKING, data=data)
    refused = chain.execute_call(stranger, chain.head)
    assert refused.is_error
    assert bytes(refused.output)[:4] == keccak(text="NotSystem(address)")[:4]
    system = CallRequest(sender=SYSTEM_CALLER, to=STAKING, data=data)
    assert not chain.execute_call(system, chain.head).is_error  # the system caller may


def _send(chain: Blockchain, signer: int, data: bytes, nonce: int, timestamp: int) -> Any:
    account = Account.from_key(dev_accounts()[signer].private_key)
    tx = account.sign_transaction(
        {
            "to": "0x" + STAKING.hex(),
            "value": 0,
            "data": data,
            "gas": 300_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 0,
            "nonce": nonce,
            "chainId": chain.chain_id,
            "type": 2,
        }
    )
    sender = bytes.fromhex(account.address[2:])
    built = chain.build_block(
        [pooled_from_raw(bytes(tx.raw_transaction), sender)],
        timestamp=timestamp,
        coinbase=VALIDATOR.address,
    )
    return built.receipts[0]


def test_the_proposer_share_is_governed_in_staking(chain: Blockchain) -> None:
    data = keccak(text="setRewardProposerBps(uint16,string)")[:4] + abi_encode(
        ["uint16", "string"], [5_000, "half to the proposer"]
    )
    stranger = CallRequest(sender=dev_accounts()[9].address, to=STAKING, data=data)
    assert chain.execute_call(stranger, chain.head).is_error  # governance only
    receipt = _send(chain, 0, data, 0, START - 50)  # the foundation holds it on a dev genesis
    assert receipt.state_root == b"\x01"
    assert _call(chain, "rewardProposerBps()", [], [], "uint16") == 5_000
    until = START + 300
    _commit(chain, until + 1, _claim(until, (OTHER.public_key, 1)), b"cert")
    plan = chain.reward_of(bytes(chain.head.hash))
    assert plan is not None
    validators = plan.total - plan.dividend
    committee_part = plan.committee[0][2]
    assert committee_part == validators - validators * 5_000 // 10_000
    assert plan.proposer_amount == validators * 5_000 // 10_000
