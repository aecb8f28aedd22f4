"""Which consensus messages a validator node accepts, ignores or rejects (penalizing the
sender), around the switch from one height to the next."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from powerverse.chain.genesis import PVC, ConsensusParams, Genesis, Validator
from powerverse.node.bft import BftProducer
from powerverse.p2p import Verdict
from tests.consensus.test_checks import CHAIN, SIGNERS, STAKE, checker, make_committee, vote

Make = Callable[[int, int], BftProducer]


@pytest.fixture
def producer(tmp_path: Path) -> Iterator[Make]:
    """A validator node's producer whose agreement is at one height and committee at another."""
    made: list[BftProducer] = []

    def make(agreement_height: int, committee_height: int) -> BftProducer:
        genesis = Genesis(
            chain_id=CHAIN.chain_id,
            timestamp=0,
            validators=tuple(
                Validator(bytes([i + 1]) * 20, s.public_key, STAKE * PVC)
                for i, s in enumerate(SIGNERS)
            ),
            consensus=ConsensusParams(),
        )
        p = BftProducer(genesis, host=SimpleNamespace(), data_dir=tmp_path, key=None)  # type: ignore[arg-type]
        made.append(p)
        p.agreement = SimpleNamespace(height=agreement_height)  # type: ignore[assignment]
        p.committee = make_committee(height=committee_height)
        p.checker = checker()
        return p

    yield make
    for p in made:
        p.journal.close()


def test_a_vote_of_the_current_height_is_checked(producer: Make) -> None:
    node = producer(3, 3)
    good = vote(SIGNERS[1], make_committee(height=3))
    assert node._classify(good) is Verdict.ACCEPT
    forged = vote(SIGNERS[1], make_committee(height=3), voter=SIGNERS[2].public_key)
    assert node._classify(forged) is Verdict.REJECT


def test_a_late_vote_while_the_next_committee_is_being_set_is_ignored(producer: Make) -> None:
    """Height 3 is decided and the node is making height 4's empty block: its agreement is
    still height 3's while the committee is already height 4's. An honest late precommit of
    height 3 must not be judged against height 4's committee (it would fail and the sender
    would lose score)."""
    node = producer(3, 4)
    late = vote(SIGNERS[2], make_committee(height=3))
    assert node._classify(late) is Verdict.IGNORE
    assert node._classify(late) is Verdict.IGNORE  # and again: never a REJECT
    node.committee = make_committee(height=3)  # the same vote, judged at its own height
    assert node._classify(late) is Verdict.ACCEPT


@pytest.mark.parametrize("height", [2, 5])
def test_votes_of_other_heights_are_never_rejected(producer: Make, height: int) -> None:
    node = producer(3, 3)
    other = vote(SIGNERS[1], make_committee(height=height))
    assert node._classify(other) is Verdict.IGNORE


def test_messages_of_the_next_height_are_checked_before_they_count(producer: Make) -> None:
    """A message of a later height cannot be checked when it arrives (that height's committee
    is not known yet): it is buffered, and checked once the height starts. A forged one is
    dropped there and never reaches the agreement."""
    node = producer(3, 3)
    committee = make_committee(height=4)
    good = vote(SIGNERS[1], committee)
    forged = vote(SIGNERS[1], committee, voter=SIGNERS[2].public_key)  # signed by another key
    inflated = vote(SIGNERS[3], committee, credential=replace(good.credential, weight=10**6))
    for msg in (good, forged, inflated):
        assert node._classify(msg) is Verdict.IGNORE  # buffered, not judged yet
    assert node._buffered == 3
    assert node._take_buffered(4, committee) == [good]
    assert node._buffered == 0 and node._take_buffered(4, committee) == []
