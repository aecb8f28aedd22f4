"""Equivocation proven on chain: anyone submits two conflicting signed votes, the chain's
precompile checks them, Staking slashes and jails the validator once (real dev node)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import rlp

from powerverse.consensus.messages import Chain, Credential, Step, Vote, encode
from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.market.exceptions import ContractError
from powerverse.market.staking import Staking
from powerverse.node.runner import dev_validator
from tests.market.conftest import ClientFactory
from tests.rpc.conftest import ThreadedNode

CRED = Credential(vrf_hash=b"\x07" * 64, proof=b"\x08" * 80, weight=1)


def _votes(node: ThreadedNode, key: ConsensusKey, height: int = 5) -> list[str]:
    genesis_hash = bytes.fromhex(node.result("eth_getBlockByNumber", "0x0", False)["hash"][2:])
    chain = Chain(31337, genesis_hash)
    out = []
    for value in (b"\xaa" * 32, b"\xbb" * 32):
        vote = Vote(height, 0, Step.PRECOMMIT, value, key.public_key, CRED)
        vote = replace(vote, signature=key.sign(vote.signing_bytes(chain)))
        out.append("0x" + encode(vote).hex())
    return out


def test_anyone_proves_an_equivocation_once(
    fresh_node: ThreadedNode, dev_signers: list, client: ClientFactory
) -> None:
    from powerverse.market.client import ChainClient

    reporter = Staking(ChainClient(fresh_node.url, dev_signers[7]))  # holds no role
    validator = dev_validator()
    key = validator.consensus.public_key
    before = reporter.validator_by_key(key)
    record = {"messages": _votes(fresh_node, validator.consensus)}

    assert reporter.submit_evidence(record) == (key, 5)
    after = reporter.validator_by_key(key)
    assert after.jailed
    assert after.total_stake == before.total_stake - before.total_stake * 500 // 10_000  # 5%
    assert after.slashed == before.total_stake * 500 // 10_000
    with pytest.raises(ContractError) as info:
        reporter.submit_evidence(record)
    assert info.value.name == "EvidenceAlreadyUsed"


def test_what_is_not_evidence_is_refused(fresh_node: ThreadedNode, dev_signers: list) -> None:
    from powerverse.market.client import ChainClient

    reporter = Staking(ChainClient(fresh_node.url, dev_signers[7]))
    key = dev_validator().consensus.public_key
    first, _ = _votes(fresh_node, dev_validator().consensus)
    for bad in (
        {"messages": [first, first]},  # same vote twice
        {"messages": [first, "0x" + "00" * 10]},  # garbage
        bytes(rlp.encode([b"x"])),
    ):
        with pytest.raises(ContractError) as info:
            reporter.submit_evidence(bad)
        assert info.value.name == "InvalidEvidence"
    # a well-formed equivocation by a key that is not a validator
    stranger = ConsensusKey.from_seed(b"\x42" * 32)
    with pytest.raises(ContractError) as info:
        reporter.submit_evidence({"messages": _votes(fresh_node, stranger)})
    assert info.value.name != "InvalidEvidence"
    assert not reporter.validator_by_key(key).jailed  # nothing happened to the validator
