"""Downtime jailing: validators prove liveness with their signed precommits (checked by the
chain's vote precompile); one without a proof for more than the window may be jailed by anyone
(real dev node)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.consensus.messages import Chain, Credential, Step, Vote, encode
from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError
from powerverse.market.staking import Staking
from powerverse.node.runner import dev_validator
from tests.market.conftest import increase_time
from tests.rpc.conftest import ThreadedNode

CRED = Credential(vrf_hash=b"\x07" * 64, proof=b"\x08" * 80, weight=1)


def _chain(node: ThreadedNode) -> Chain:
    genesis = node.result("eth_getBlockByNumber", "0x0", False)["hash"]
    return Chain(31337, bytes.fromhex(genesis[2:]))


def _block_hash(node: ThreadedNode, number: int) -> bytes:
    return bytes.fromhex(node.result("eth_getBlockByNumber", hex(number), False)["hash"][2:])


def _head(node: ThreadedNode) -> int:
    return int(node.result("eth_blockNumber"), 16)


def _mine(node: ThreadedNode, blocks: int) -> None:
    for _ in range(blocks):
        node.result("evm_mine")


def _precommit(
    node: ThreadedNode,
    key: ConsensusKey,
    height: int,
    value: bytes | None = None,
    step: Step = Step.PRECOMMIT,
) -> bytes:
    value = _block_hash(node, height) if value is None else value
    vote = Vote(height, 0, step, value, key.public_key, CRED)
    return encode(replace(vote, signature=key.sign(vote.signing_bytes(_chain(node)))))


def _reason(info: pytest.ExceptionInfo[ContractError]) -> str:
    return info.value.name


def test_a_signed_precommit_for_a_recent_block_proves_liveness(
    fresh_node: ThreadedNode, dev_signers: list[LocalAccount]
) -> None:
    anyone = Staking(ChainClient(fresh_node.url, dev_signers[7]))  # holds no role
    key = dev_validator().consensus
    _mine(fresh_node, 3)
    last, until = anyone.liveness(key.public_key)
    assert last <= 1 and until == last + 10_000  # registered in the genesis state
    height = _head(fresh_node) - 1
    assert anyone.prove_liveness(_precommit(fresh_node, key, height)) == (key.public_key, height)
    assert anyone.liveness(key.public_key) == (height, height + 10_000)
    # an older proof does not move the window back
    anyone.prove_liveness(_precommit(fresh_node, key, 1))
    assert anyone.liveness(key.public_key)[0] == height


def test_what_does_not_prove_liveness(
    fresh_node: ThreadedNode, dev_signers: list[LocalAccount]
) -> None:
    anyone = Staking(ChainClient(fresh_node.url, dev_signers[7]))
    key = dev_validator().consensus
    _mine(fresh_node, 2)
    head = _head(fresh_node)
    cases = {
        "StaleLivenessProof": [
            _precommit(fresh_node, key, head - 1, value=b"\x11" * 32),  # not the canonical block
            _precommit(fresh_node, key, head - 1, value=b"\x00" * 32),  # a nil precommit
            _precommit(fresh_node, key, head + 5, value=b"\x22" * 32),  # a future block
        ],
        "InvalidLivenessProof": [
            _precommit(fresh_node, key, head - 1, step=Step.PREVOTE),  # a prevote
            _precommit(fresh_node, key, head - 1)[:-1] + b"\x00",  # a forged signature
            b"\x03\xc0",
            b"",
        ],
        "UnknownConsensusKey": [
            _precommit(fresh_node, ConsensusKey.from_seed(b"\x42" * 32), head - 1)
        ],
    }
    for name, votes in cases.items():
        for vote in votes:
            with pytest.raises(ContractError) as info:
                anyone.prove_liveness(vote)
            assert _reason(info) == name
    assert anyone.liveness(key.public_key)[0] <= 1  # nothing moved
    # a real precommit, but for a block the EVM no longer knows (more than 256 blocks back)
    old = _precommit(fresh_node, key, head - 1)
    _mine(fresh_node, 257)
    with pytest.raises(ContractError) as info:
        anyone.prove_liveness(old)
    assert _reason(info) == "StaleLivenessProof"


def test_a_validator_down_for_the_window_is_jailed_by_anyone(
    fresh_node: ThreadedNode, dev_signers: list[LocalAccount]
) -> None:
    validator = dev_validator()
    key = validator.consensus.public_key
    governance = Staking(ChainClient(fresh_node.url, dev_signers[0]))
    anyone = Staking(ChainClient(fresh_node.url, dev_signers[7]))
    operator_account = Account.from_key(validator.account_key)
    ChainClient(fresh_node.url, dev_signers[1]).send_value(operator_account.address, 10**18)
    operator = Staking(ChainClient(fresh_node.url, operator_account))

    with pytest.raises(ContractError) as info:
        anyone.set_liveness_window(16, "no role")
    assert "AccessControl" in _reason(info)
    with pytest.raises(ContractError) as info:
        governance.set_liveness_window(15, "too short")
    assert _reason(info) == "InvalidLivenessWindow"
    governance.set_liveness_window(16, "test")
    assert anyone.liveness_window() == 16

    with pytest.raises(ContractError) as info:
        anyone.report_downtime(key)
    assert _reason(info) == "NotDown"
    _mine(fresh_node, 20)
    anyone.report_downtime(key)
    jailed = anyone.validator_by_key(key)
    assert jailed.jailed and not jailed.active
    assert key not in [v.consensus_key for v in anyone.active_validators()]
    with pytest.raises(ContractError) as info:
        anyone.report_downtime(key)
    assert _reason(info) == "AlreadyJailed"

    # after the jail period the operator unjails and starts a fresh window
    increase_time(fresh_node, anyone.params().jail_period + 1)
    operator.unjail()
    assert anyone.validator_by_key(key).active
    with pytest.raises(ContractError) as info:
        anyone.report_downtime(key)
    assert _reason(info) == "NotDown"


def test_proofs_keep_a_live_validator_out_of_jail(
    fresh_node: ThreadedNode, dev_signers: list[LocalAccount]
) -> None:
    validator = dev_validator()
    key = validator.consensus
    governance = Staking(ChainClient(fresh_node.url, dev_signers[0]))
    governance.set_liveness_window(16, "test")
    for _ in range(3):
        _mine(fresh_node, 10)
        governance.prove_liveness(_precommit(fresh_node, key, _head(fresh_node) - 1))
    with pytest.raises(ContractError) as info:
        governance.report_downtime(key.public_key)
    assert _reason(info) == "NotDown"
    assert not governance.validator_by_key(key.public_key).jailed
