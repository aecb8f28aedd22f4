"""The agent's dividend heartbeats: one per slot for each offered device, looked at once a minute,
refusals (an unlisted device, a node that is down) logged without stopping the agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from powerverse.infra.agent import DEVICE_HEARTBEAT_RETRY_S, Agent, Offer
from powerverse.infra.drivers.base import BootSource
from powerverse.infra.state import AgentState
from powerverse.market.exceptions import ContractError
from tests.infra.test_agent import FakeChain, FakeDriver

LISTED, UNLISTED = 7, 9
SLOT = 3_600


@dataclass
class FakePool:
    """The DividendPool's heartbeat rule: one per slot, only for listed devices."""

    clock: list[float]
    listed: set[int] = field(default_factory=lambda: {LISTED})
    beats: dict[int, set[int]] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)
    down: bool = False

    def slot(self) -> int:
        return int(self.clock[0]) // SLOT

    def heartbeat_due(self, token_id: int) -> bool:
        self.asked.append(token_id)
        if self.down:
            raise ConnectionError("node unreachable")
        return self.slot() not in self.beats.get(token_id, set())

    def heartbeat(self, token_id: int) -> object:
        if token_id not in self.listed:
            raise ContractError("NotListed", {"tokenId": token_id}, b"")
        slots = self.beats.setdefault(token_id, set())
        if self.slot() in slots:
            raise ContractError("AlreadyBeaten", {}, b"")
        slots.add(self.slot())
        return None


def agent(tmp_path: Path, pool: FakePool | None, clock: list[float]) -> Agent:
    boot = BootSource(kernel=Path("/k"), initrd=Path("/i"))
    offers = {t: Offer(token_id=t, vcpus=1, memory_mib=256, boot=boot) for t in (LISTED, UNLISTED)}
    return Agent(
        state=AgentState(tmp_path / "agent.sqlite"),
        chain=FakeChain(),  # type: ignore[arg-type]
        driver=FakeDriver(),  # type: ignore[arg-type]
        offers=offers,
        clock=lambda: clock[0],
        dividends=pool,
    )


def test_one_heartbeat_per_slot_for_each_offered_device(tmp_path: Path) -> None:
    clock = [10 * SLOT + 5.0]
    pool = FakePool(clock)
    a = agent(tmp_path, pool, clock)
    a.step()
    assert pool.beats == {LISTED: {10}}  # the unlisted device was refused, the step went on
    assert sorted(pool.asked) == [LISTED, UNLISTED]
    clock[0] += DEVICE_HEARTBEAT_RETRY_S - 1
    a.step()  # within a minute: not even asked
    assert len(pool.asked) == 2
    clock[0] += 1
    a.step()  # asked again, same slot: nothing sent
    assert len(pool.asked) == 4 and pool.beats == {LISTED: {10}}
    clock[0] = 11 * SLOT + 1
    a.step()
    assert pool.beats == {LISTED: {10, 11}}


def test_a_node_that_is_down_does_not_stop_the_agent(tmp_path: Path) -> None:
    clock = [5.0]
    pool = FakePool(clock, down=True)
    a = agent(tmp_path, pool, clock)
    a.step()
    assert pool.beats == {}
    pool.down = False
    clock[0] += DEVICE_HEARTBEAT_RETRY_S
    a.step()
    assert pool.beats == {LISTED: {0}}
