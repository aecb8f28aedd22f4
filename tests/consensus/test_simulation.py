"""The agreement under a simulated network and clock: safety every height, liveness after GST.

Each run is reproducible from its seed. Together these runs decide well over a thousand
heights (several thousand rounds counting retries) with delays, drops, reorderings,
partitions, crashes and up to f lying validators.
"""

from __future__ import annotations

import pytest

from powerverse.chain.genesis import ConsensusParams
from powerverse.consensus.simulation import (
    Crash,
    Network,
    SafetyViolation,
    SimConfig,
    Simulation,
)

HEIGHTS = 40


def _run(config: SimConfig, heights: int = HEIGHTS, max_time: float = 600.0) -> Simulation:
    sim = Simulation(config)
    result = sim.run(heights=heights, max_time=max_time)
    honest = [n for n in sim.nodes if n.behaviour is None]
    # Safety is checked on every decision inside the run; here: all honest chains agree.
    for node in honest:
        for height, value in node.decided.items():
            assert result.decisions[height] == value
    return sim


def _heights(sim: Simulation) -> list[int]:
    return [len(n.decided) for n in sim.nodes if n.behaviour is None]


@pytest.mark.parametrize("seed", range(6))
def test_honest_validators_finalize_every_height_in_one_round(seed: int) -> None:
    sim = _run(SimConfig(nodes=4, seed=seed))
    assert min(_heights(sim)) >= HEIGHTS
    result = sim._result()
    assert result.empty_heights == 0  # every leader's block got through
    assert max(result.rounds.values()) == 0


@pytest.mark.parametrize("seed", range(4))
def test_sortition_committee_smaller_than_the_stake(seed: int) -> None:
    # W = 4,000 units, tau = 2,000: weights are Binomial draws, not the stakes themselves.
    params = ConsensusParams(tau_committee=2000, tau_proposer=20)
    sim = _run(SimConfig(nodes=4, seed=seed, params=params))
    assert min(_heights(sim)) >= HEIGHTS


@pytest.mark.parametrize(
    ("behaviour", "seed"),
    [(b, s) for b in ("equivocate", "silent", "invalid", "random") for s in range(3)],
)
def test_one_byzantine_of_four_breaks_neither_safety_nor_liveness(
    behaviour: str, seed: int
) -> None:
    sim = _run(SimConfig(nodes=4, seed=seed, byzantine=((seed % 4, behaviour),)))
    assert min(_heights(sim)) >= HEIGHTS
    if behaviour == "equivocate":
        assert sim._result().evidence > 0  # its double votes were noticed


def test_invalid_blocks_are_never_decided() -> None:
    sim = _run(SimConfig(nodes=4, seed=7, byzantine=((2, "invalid"),)))
    for value in sim.honest_decisions.values():
        assert sim.blocks[value][2], "an invalid block was finalized"
    # When the liar led a round its block was refused: empty blocks or later rounds.
    result = sim._result()
    assert result.empty_heights + sum(result.rounds.values()) > 0


@pytest.mark.parametrize("seed", range(3))
def test_two_liars_of_seven_on_a_lossy_network(seed: int) -> None:
    config = SimConfig(
        nodes=7,
        seed=seed,
        byzantine=((1, "equivocate"), (4, "random")),
        network=Network(min_delay=0.001, max_delay=0.2, drop_rate=0.3, gst=15.0),
    )
    sim = _run(config, heights=25)
    assert min(_heights(sim)) >= 25


@pytest.mark.parametrize("seed", range(3))
def test_partition_heals(seed: int) -> None:
    # Nodes 0 and 1 are cut from 2 and 3 for 10 s: neither side has 2/3, nothing is
    # decided while it lasts, and both sides go on once it heals.
    network = Network(partitions=((1.0, 11.0, frozenset({0, 1})),), gst=11.0)
    sim = Simulation(SimConfig(nodes=4, seed=seed, network=network))
    result = sim.run(heights=10_000, max_time=10.9)
    during = {h for n in sim.nodes for h, t in n.decided_at.items() if 1.5 < t < 10.9}
    assert not during, f"heights decided during the partition: {sorted(during)}"
    stuck = result.heights
    sim2 = _run(SimConfig(nodes=4, seed=seed, network=network), heights=max(stuck.values()) + 20)
    assert min(_heights(sim2)) >= max(stuck.values()) + 20


def test_a_crashed_validator_catches_up_and_votes_again() -> None:
    sim = _run(SimConfig(nodes=4, seed=11, crashes=(Crash(2, 1.0, 4.0),)), heights=80)
    assert min(_heights(sim)) >= 80
    node = sim.nodes[2]
    after = [h for h, t in node.decided_at.items() if t > 5.5]
    assert after, "the restarted node decided nothing after coming back"
    assert any(t > 5.0 for t in node.vote_times), "it never voted again"


def test_two_of_four_down_stops_finality_until_one_returns() -> None:
    config = SimConfig(nodes=4, seed=5, crashes=(Crash(1, 2.0, 30.0), Crash(3, 2.0, 8.0)))
    sim = Simulation(config)
    sim.run(heights=10_000, max_time=9.5)
    decided_while_down = {h for n in sim.nodes for h, t in n.decided_at.items() if 2.5 < t < 10.0}
    assert not decided_while_down  # 2 of 4 cannot make 2/3: no block is finalized
    sim2 = _run(config, heights=60, max_time=120.0)
    live = [sim2.nodes[i] for i in (0, 2, 3)]
    assert all(any(t > 10.0 for t in n.decided_at.values()) for n in live)


def test_safety_violations_are_caught() -> None:
    sim = Simulation(SimConfig(nodes=4, seed=0))
    sim.run(heights=2)
    node = sim.nodes[0]
    other = next(v for v in sim.blocks if v != sim.honest_decisions[1])
    node.decided.pop(1)
    with pytest.raises(SafetyViolation):
        sim._decide(node, 1, other, None)


def test_runs_are_reproducible() -> None:
    config = SimConfig(
        nodes=5, seed=42, byzantine=((0, "random"),), network=Network(drop_rate=0.1, gst=3.0)
    )
    first = Simulation(config).run(heights=15)
    second = Simulation(config).run(heights=15)
    assert first == second
