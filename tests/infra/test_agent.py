"""The agent's reconcile loop over an in-memory chain and driver (unit layer: the real chain,
QEMU and sandbox run in tests/e2e/test_provider_e2e.py).

What matters here is crash safety: a fresh Agent over the same state database (a kill -9 and a
restart) must never spawn a VM twice, confirm twice, take or submit a task twice, and must
finish whatever was under way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from powerverse.infra.agent import Agent, Offer
from powerverse.infra.drivers.base import (
    BootSource,
    InstanceInfo,
    InstanceSpec,
    InstanceState,
    TaskOutcome,
    TaskResult,
    TaskSpec,
)
from powerverse.infra.exceptions import DriverError, InstanceNotFound
from powerverse.infra.state import AgentState, LeaseState, TaskState
from powerverse.infra.taskspec import encode_data_uri
from powerverse.market.exceptions import ContractError
from powerverse.market.orders import Acceptance, Order, OrderKind, OrderState, Specs
from powerverse.market.rentals import MarketConfig, Rental, RentalState

PROVIDER, CONSUMER = "0x" + "11" * 20, "0x" + "22" * 20
TOKEN, OTHER_TOKEN = 7, 8
DAY = 86_400


class Crash(Exception):
    """Simulates the agent process dying at this point."""


@dataclass
class FakeChain:
    """Just enough of the Market and Orders contracts' state machine."""

    time: int = 1_000_000
    rentals: dict[int, Rental] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)
    crash_after: str | None = None  # the named call happens on chain, then the agent dies

    def _did(self, name: str, ident: int) -> None:
        self.calls.append((name, ident))
        if self.crash_after == name:
            self.crash_after = None
            raise Crash(name)

    def now(self) -> int:
        return self.time

    def market_config(self) -> MarketConfig:
        return MarketConfig(
            treasury=PROVIDER, fee_bps=250, confirm_window=3600, heartbeat_interval=600,
            heartbeat_grace=300,
        )  # fmt: skip

    def rent(self, token: int = TOKEN, days: int = 2) -> int:
        rid = len(self.rentals) + 1
        self.rentals[rid] = Rental(
            rental_id=rid, token_id=token, consumer=CONSUMER, created_at=self.time,
            period_days=days, provider=PROVIDER, confirm_deadline=self.time + 3600, fee_bps=250,
            state=RentalState.PENDING, handed_to_arbitration=False, start=0, end=0,
            last_heartbeat=0, price_per_day=10, escrow=10 * days, dispute_id=0,
        )  # fmt: skip
        return rid

    def rental_count(self) -> int:
        return len(self.rentals)

    def rental(self, rental_id: int) -> Rental:
        return self.rentals[rental_id]

    def _set(self, rid: int, **changes: object) -> None:
        self.rentals[rid] = replace(self.rentals[rid], **changes)  # type: ignore[arg-type]

    def confirm(self, rental_id: int) -> None:
        r = self.rentals[rental_id]
        if r.state != RentalState.PENDING:
            raise ContractError("RentalNotInState", {}, "0x")
        end = self.time + r.period_days * DAY
        self._set(rental_id, state=RentalState.ACTIVE, start=self.time, end=end,
                  last_heartbeat=self.time)  # fmt: skip
        self._did("confirm", rental_id)

    def decline(self, rental_id: int) -> None:
        self._set(rental_id, state=RentalState.REFUNDED, escrow=0)
        self._did("decline", rental_id)

    def settle(self, rental_id: int) -> None:
        r = self.rentals[rental_id]
        if r.state != RentalState.ACTIVE or self.time < r.end:
            raise ContractError("RentalNotExpired", {}, "0x")
        self._set(rental_id, state=RentalState.SETTLED, escrow=0)
        self._did("settle", rental_id)

    def heartbeat(self, rental_id: int) -> None:
        self._set(rental_id, last_heartbeat=self.time)
        self._did("heartbeat", rental_id)

    def ssh_keys(self, account: str) -> list[str]:
        return (
            ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests"] if account == CONSUMER else []
        )

    def post_task(self, spec: str, deadline_in: int = DAY) -> int:
        oid = len(self.orders) + 1
        self.orders[oid] = Order(
            order_id=oid, kind=OrderKind.TASK, state=OrderState.OPEN, consumer=CONSUMER,
            provider=None, acceptance=Acceptance.MANUAL, fee_bps=250, period_days=0,
            deadline=self.time + deadline_in, token_id=0, escrow=100, price_per_day=0,
            created_at=self.time, start=0, end=0, submitted_at=0, review_window=3600,
            expected_hash=None, result_hash=None, dispute_id=0, specs=Specs(), spec_cid=spec,
            result_cid="",
        )  # fmt: skip
        return oid

    def order_count(self) -> int:
        return len(self.orders)

    def order(self, order_id: int) -> Order:
        return self.orders[order_id]

    def take_task(self, order_id: int, token_id: int) -> None:
        o = self.orders[order_id]
        if o.state != OrderState.OPEN:
            raise ContractError("OrderNotInState", {}, "0x")
        self.orders[order_id] = replace(o, state=OrderState.TAKEN, provider=PROVIDER,
                                        token_id=token_id)  # fmt: skip
        self._did("take", order_id)

    def submit_result(self, order_id: int, result_cid: str, result_hash: bytes) -> None:
        o = self.orders[order_id]
        if o.state != OrderState.TAKEN:
            raise ContractError("OrderNotInState", {}, "0x")
        self.orders[order_id] = replace(o, state=OrderState.SUBMITTED, result_cid=result_cid,
                                        result_hash=result_hash)  # fmt: skip
        self._did("submit", order_id)


@dataclass
class FakeDriver:
    """Instances in memory; they 'survive' an agent restart like detached QEMU processes."""

    instances: dict[str, InstanceSpec] = field(default_factory=dict)
    spawned: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    fail_spawn: bool = False

    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        if self.fail_spawn:
            raise DriverError("no room for the VM")
        self.instances[spec.instance_id] = spec
        self.spawned.append(spec.instance_id)
        return self.info(spec.instance_id)

    def info(self, instance_id: str) -> InstanceInfo:
        if instance_id not in self.instances:
            raise InstanceNotFound(instance_id)
        spec = self.instances[instance_id]
        return InstanceInfo(
            instance_id=instance_id, state=InstanceState.RUNNING, vcpus=spec.vcpus,
            memory_mib=spec.memory_mib, accel="tcg", ssh_host="127.0.0.1", ssh_port=2222,
        )  # fmt: skip

    def destroy(self, instance_id: str) -> None:
        del self.instances[instance_id]
        self.destroyed.append(instance_id)

    def list_instances(self) -> list[str]:
        return sorted(self.instances)

    def adopt(self) -> list[str]:
        return sorted(self.instances)


@dataclass
class FakeRunner:
    """Writes an output file as the task's command would."""

    runs: list[str] = field(default_factory=list)

    def run(self, spec: TaskSpec, output_dir: Path) -> TaskResult:
        self.runs.append(spec.task_id)
        (output_dir / "result.txt").write_text(" ".join(spec.argv))
        return TaskResult(
            task_id=spec.task_id, outcome=TaskOutcome.SUCCEEDED, exit_code=0,
            wall_seconds=0.1, output_dir=output_dir,
        )  # fmt: skip


class MemoryStore:
    """Content-addressed bytes (sha256 ids) for the unit tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def put_bytes(self, data: bytes) -> str:
        cid = "sha256-" + hashlib.sha256(data).hexdigest()
        (self.root / cid).write_bytes(data)
        return cid

    def put_file(self, path: Path) -> str:
        return self.put_bytes(path.read_bytes())

    def get_bytes(self, cid: str) -> bytes:
        return (self.root / cid).read_bytes()

    def path_of(self, cid: str) -> Path:
        return self.root / cid


@dataclass
class World:
    chain: FakeChain
    driver: FakeDriver
    runner: FakeRunner
    tmp: Path

    def agent(self) -> Agent:
        """A fresh agent process over the same database, driver and chain."""
        offers = {
            TOKEN: Offer(token_id=TOKEN, vcpus=2, memory_mib=512,
                         boot=BootSource(kernel=Path("/k"), initrd=Path("/i")), take_tasks=True)
        }  # fmt: skip
        agent = Agent(
            state=AgentState(self.tmp / "agent.sqlite"), chain=self.chain,  # type: ignore[arg-type]
            driver=self.driver,  # type: ignore[arg-type]
            offers=offers, runner=self.runner,  # type: ignore[arg-type]
            store=MemoryStore(self.tmp / "objects"), work_dir=self.tmp / "work",
        )  # fmt: skip
        agent.recover()
        return agent


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(FakeChain(), FakeDriver(), FakeRunner(), tmp_path)


def test_a_rental_is_provisioned_confirmed_heartbeaten_settled_and_wiped(world: World) -> None:
    agent = world.agent()
    rid = world.chain.rent()
    world.chain.rent(token=OTHER_TOKEN)  # another provider's resource: not ours
    agent.step()
    assert world.driver.spawned == [f"rental-{rid}"]
    spec = world.driver.instances[f"rental-{rid}"]
    assert spec.ssh_public_keys == ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests",)
    assert world.chain.rentals[rid].state == RentalState.ACTIVE
    lease = agent.state.lease(rid)
    assert lease is not None and lease.state == LeaseState.CONFIRMED and lease.ssh_port == 2222
    assert agent.state.lease(2) is None

    world.chain.time += 200
    agent.step()
    assert ("heartbeat", rid) not in world.chain.calls  # not yet half an interval
    world.chain.time += 200
    agent.step()
    assert world.chain.calls.count(("heartbeat", rid)) == 1

    world.chain.time = world.chain.rentals[rid].end
    agent.step()
    assert world.chain.rentals[rid].state == RentalState.SETTLED
    assert world.driver.destroyed == [f"rental-{rid}"] and not world.driver.instances
    lease = agent.state.lease(rid)
    assert lease is not None and lease.state == LeaseState.DONE
    agent.step()  # nothing more happens
    assert world.chain.calls.count(("settle", rid)) == 1


def test_kill_after_spawn_before_confirm_adopts_and_confirms_once(world: World) -> None:
    rid = world.chain.rent()
    agent = world.agent()
    world.driver.spawn = _crash_after(world.driver.spawn)  # type: ignore[method-assign]
    with pytest.raises(Crash):
        agent.step()
    assert list(world.driver.instances) == [f"rental-{rid}"]  # the VM kept running

    del world.driver.spawn  # the restarted agent's driver spawns normally
    again = world.agent()
    again.step()
    assert world.driver.spawned == [f"rental-{rid}"]  # adopted, not spawned twice
    assert world.chain.calls == [("confirm", rid)]
    lease = again.state.lease(rid)
    assert lease is not None and lease.state == LeaseState.CONFIRMED


def test_kill_right_after_the_confirm_transaction_never_confirms_twice(world: World) -> None:
    rid = world.chain.rent()
    world.chain.crash_after = "confirm"
    with pytest.raises(Crash):
        world.agent().step()
    again = world.agent()
    again.step()
    again.step()
    assert world.chain.calls.count(("confirm", rid)) == 1
    assert world.driver.spawned == [f"rental-{rid}"]
    lease = again.state.lease(rid)
    assert lease is not None and lease.state == LeaseState.CONFIRMED


def test_a_vm_that_cannot_start_is_declined_so_the_renter_is_refunded(world: World) -> None:
    world.driver.fail_spawn = True
    rid = world.chain.rent()
    agent = world.agent()
    agent.step()
    assert world.chain.rentals[rid].state == RentalState.REFUNDED
    lease = agent.state.lease(rid)
    assert lease is not None and lease.state == LeaseState.FAILED and "declined" in lease.note


def test_a_missed_confirm_deadline_and_an_ended_rental_wipe_the_vm(world: World) -> None:
    agent = world.agent()
    late = world.chain.rent()
    world.chain.time += 3601  # the deadline passed before the agent looked
    agent.step()
    lease = agent.state.lease(late)
    assert lease is not None and lease.state == LeaseState.FAILED
    assert not world.driver.instances and ("confirm", late) not in world.chain.calls

    rid = world.chain.rent()
    agent.step()
    assert f"rental-{rid}" in world.driver.instances
    world.chain._set(rid, state=RentalState.TERMINATED)  # e.g. an arbitration ruling
    agent.step()
    assert f"rental-{rid}" not in world.driver.instances
    lease = agent.state.lease(rid)
    assert lease is not None and lease.state == LeaseState.DONE


def test_a_vm_lost_with_the_host_is_started_again(world: World) -> None:
    rid = world.chain.rent()
    world.agent().step()
    world.driver.instances.clear()  # the host rebooted: no QEMU left
    again = world.agent()
    again.step()
    assert world.driver.spawned == [f"rental-{rid}", f"rental-{rid}"]
    assert world.chain.calls.count(("confirm", rid)) == 1


def test_a_task_is_taken_run_stored_and_submitted_once(world: World) -> None:
    spec = encode_data_uri({"argv": ["echo", "hello"], "limits": {"wall_seconds": 5}})
    oid = world.chain.post_task(spec)
    agent = world.agent()
    agent.step()
    order = world.chain.orders[oid]
    assert order.state == OrderState.SUBMITTED and order.token_id == TOKEN
    record = agent.state.task(oid)
    assert record is not None and record.state == TaskState.SUBMITTED
    manifest = json.loads(agent.store.get_bytes(order.result_cid))  # type: ignore[union-attr]
    assert manifest["outcome"] == "succeeded" and set(manifest["files"]) == {"result.txt"}
    raw = agent.store.get_bytes(order.result_cid)  # type: ignore[union-attr]
    assert order.result_hash == hashlib.sha256(raw).digest()
    agent.step()
    assert world.runner.runs == [f"task-{oid}"]
    assert world.chain.calls == [("take", oid), ("submit", oid)]


@pytest.mark.parametrize("crash", ["take", "submit"])
def test_kill_around_task_transactions_never_repeats_them(world: World, crash: str) -> None:
    oid = world.chain.post_task(encode_data_uri({"argv": ["true"]}))
    world.chain.crash_after = crash
    with pytest.raises(Crash):
        world.agent().step()
    again = world.agent()
    again.step()
    again.step()
    assert world.chain.calls.count(("take", oid)) == 1
    assert world.chain.calls.count(("submit", oid)) == 1
    assert world.chain.orders[oid].state == OrderState.SUBMITTED
    record = again.state.task(oid)
    assert record is not None and record.state == TaskState.SUBMITTED


@pytest.mark.parametrize(
    "spec",
    [
        "data:application/json;base64,!!!",
        encode_data_uri({"argv": []}),
        encode_data_uri({"argv": ["x"], "limits": {"memory_mib": -1}}),
        encode_data_uri({"argv": ["x"], "inputs": {"../etc": "cid"}}),
        encode_data_uri({"argv": ["x"], "rogue": 1}),
        "bafy-not-in-the-store",
    ],
)
def test_a_bad_task_spec_fails_the_task_without_running_anything(world: World, spec: str) -> None:
    oid = world.chain.post_task(spec)
    agent = world.agent()
    agent.step()
    record = agent.state.task(oid)
    assert record is not None and record.state == TaskState.FAILED and record.note
    assert world.runner.runs == [] and ("submit", oid) not in world.chain.calls


def _crash_after(spawn: object) -> object:
    def wrapped(spec: InstanceSpec) -> InstanceInfo:
        info = spawn(spec)  # type: ignore[operator]
        raise Crash(f"after spawning {info.instance_id}")

    return wrapped
