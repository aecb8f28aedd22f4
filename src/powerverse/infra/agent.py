"""The provider agent's control loop: follow the market, serve rentals and tasks, never lose one.

Each :meth:`Agent.step` reconciles three views — the chain (:class:`ChainPort`), the host
(:class:`ComputeDriver`, :class:`TaskRunner`) and the agent's own records (:class:`AgentState`)
— and moves every lease and task one step towards where the chain says it should be:

- a new rental of one of the agent's resources: record the lease, spawn the VM (the renter's
  SSH keys from its DID document), confirm the start on chain before the confirm deadline; if
  the VM cannot be started, decline (the renter is refunded in full);
- an active rental: keep its VM running, send heartbeats at half the heartbeat interval,
  settle it at its end; a rental that ended (settled, refunded, terminated, resolved): destroy
  and wipe its VM;
- an open task order (when the agent takes tasks): take it with a resource that meets its
  specs, run it in the sandbox, store the outputs by content id, submit the result before the
  deadline.

Each action is written to the state database before it happens, so after a ``kill -9`` the
first :meth:`Agent.recover` re-adopts the VMs that kept running and the next steps finish what
was under way: a lease found PROVISIONING whose VM exists is adopted, not spawned twice; a
confirm that did happen is seen on chain (the rental is ACTIVE) and not sent again.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from powerverse.infra.chainport import ChainPort
from powerverse.infra.drivers.base import (
    BootSource,
    ComputeDriver,
    InstanceSpec,
    NetworkSpec,
    TaskRunner,
    TaskSpec,
)
from powerverse.infra.exceptions import ConfigError, DriverError, InfraError
from powerverse.infra.state import AgentState, Lease, LeaseState, TaskRecord, TaskState
from powerverse.infra.taskspec import ContentStore, decode_spec, result_manifest
from powerverse.market.exceptions import MarketError
from powerverse.market.orders import Order, OrderKind, OrderState
from powerverse.market.rentals import Rental, RentalState

__all__ = ["Agent", "DeviceHeartbeats", "Offer"]

log = logging.getLogger(__name__)

_RENTALS, _ORDERS = "rentals", "orders"
DEVICE_HEARTBEAT_RETRY_S = 60
"""Seconds between two looks at one device's dividend heartbeat (slots are an hour by default)."""


class DeviceHeartbeats(Protocol):
    """The dividend pool's device heartbeats (`powerverse.market.dividends.DividendPool`)."""

    def heartbeat_due(self, token_id: int) -> bool:
        """Whether the device has no heartbeat in the current slot yet."""
        ...

    def heartbeat(self, token_id: int) -> object:
        """Send one (refused when the device is not verified, listed and unblocked)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Offer:
    """What the agent runs for a rental of one resource (token)."""

    token_id: int
    vcpus: int
    memory_mib: int
    boot: BootSource
    disk_gib: int | None = None
    max_vcpus: int | None = None
    ssh_host: str = "127.0.0.1"
    network: str = "user"  # "user", or "routed": a bridge and subnet of its own per lease
    take_tasks: bool = False  # take open task orders with this resource


@dataclass
class Agent:
    """One host's agent: its resources (offers), the chain, the driver and its own state."""

    state: AgentState
    chain: ChainPort
    driver: ComputeDriver
    offers: Mapping[int, Offer]
    runner: TaskRunner | None = None
    store: ContentStore | None = None
    work_dir: Path = field(default_factory=lambda: Path("tasks"))
    clock: Callable[[], float] = time.time
    dividends: DeviceHeartbeats | None = None
    _heartbeats: dict[int, int] = field(default_factory=dict, init=False)
    _device_checked: dict[int, float] = field(default_factory=dict, init=False)

    # ------------------------------------------------------------------ lifecycle

    def recover(self) -> list[str]:
        """After a (re)start: re-adopt running VMs; returns the adopted instance ids."""
        adopted = self.driver.adopt()
        live = set(adopted)
        for lease in self.state.leases(LeaseState.RUNNING, LeaseState.CONFIRMED):
            if lease.instance_id not in live:
                log.warning(
                    "the VM of rental %d is gone; it will be started again", lease.rental_id
                )
                self.state.put_lease(replace(lease, state=LeaseState.PROVISIONING))
        self.state.record("recover", f"adopted {len(adopted)} running VM(s)")
        return adopted

    def step(self) -> None:
        """One reconcile pass over new and known rentals and tasks."""
        self._scan_rentals()
        for lease in self.state.leases(
            LeaseState.PROVISIONING, LeaseState.RUNNING, LeaseState.CONFIRMED, LeaseState.STOPPING
        ):
            try:
                self._serve(lease)
            except (InfraError, MarketError) as exc:
                log.warning("rental %d: %s", lease.rental_id, exc)
                self.state.record("error", f"rental {lease.rental_id}: {exc}")
        if self.runner is not None and any(o.take_tasks for o in self.offers.values()):
            self._scan_tasks()
            for task in self.state.tasks(
                TaskState.TAKING, TaskState.TAKEN, TaskState.RUNNING, TaskState.STORED
            ):
                try:
                    self._work(task)
                except (InfraError, MarketError) as exc:
                    log.warning("task %d: %s", task.order_id, exc)
                    self.state.record("error", f"task {task.order_id}: {exc}")
        self._device_heartbeats()

    def _device_heartbeats(self) -> None:
        """Keep each offered device online for the monthly dividends: one heartbeat per slot
        (looked at every DEVICE_HEARTBEAT_RETRY_S seconds; refusals are only logged)."""
        if self.dividends is None:
            return
        now = self.clock()
        for token_id in self.offers:
            last = self._device_checked.get(token_id)
            if last is not None and now - last < DEVICE_HEARTBEAT_RETRY_S:
                continue
            self._device_checked[token_id] = now
            try:
                if self.dividends.heartbeat_due(token_id):
                    self.dividends.heartbeat(token_id)
            except (MarketError, OSError) as exc:
                log.debug("device %d: no dividend heartbeat: %s", token_id, exc)

    # ------------------------------------------------------------------ rentals

    def _scan_rentals(self) -> None:
        seen = self.state.cursor(_RENTALS)
        count = self.chain.rental_count()
        for rental_id in range(seen + 1, count + 1):
            rental = self.chain.rental(rental_id)
            ours = rental.token_id in self.offers and self.state.lease(rental_id) is None
            if ours and rental.state == RentalState.PENDING:
                self.state.put_lease(
                    Lease(
                        rental_id=rental_id,
                        token_id=rental.token_id,
                        consumer=rental.consumer,
                        instance_id=f"rental-{rental_id}",
                        state=LeaseState.PROVISIONING,
                    )
                )
                self.state.record("rental", f"rental {rental_id} of token {rental.token_id}")
            self.state.set_cursor(_RENTALS, rental_id)

    def _serve(self, lease: Lease) -> None:
        rental = self.chain.rental(lease.rental_id)
        now = self.chain.now()
        if rental.state.ended or lease.state == LeaseState.STOPPING:
            self._stop(lease, f"rental {rental.state.name.lower()}")
            return
        if rental.state == RentalState.PENDING:
            if now > rental.confirm_deadline:
                self._stop(lease, "the confirm deadline passed", failed=True)
                return
            if lease.state == LeaseState.PROVISIONING:
                lease = self._provision(lease, rental)
                if lease.state == LeaseState.FAILED:
                    return
            self.chain.confirm(lease.rental_id)  # refused if it already happened: seen next step
            self.state.put_lease(replace(lease, state=LeaseState.CONFIRMED))
            self.state.record("confirm", f"rental {lease.rental_id} confirmed")
            return
        if rental.state == RentalState.ACTIVE:
            if lease.state == LeaseState.PROVISIONING:  # the VM died with the host: start again
                lease = self._provision(lease, rental)
            if lease.state != LeaseState.CONFIRMED or lease.end != rental.end:
                lease = self.state.put_lease(
                    replace(lease, state=LeaseState.CONFIRMED, end=rental.end)
                )
            if now >= rental.end:
                self.chain.settle(lease.rental_id)
                self._stop(lease, "expired and settled")
                return
            self._heartbeat(lease, rental, now)

    def _provision(self, lease: Lease, rental: Rental) -> Lease:
        offer = self.offers[lease.token_id]
        if lease.instance_id in self.driver.list_instances():  # spawned before a crash
            info = self.driver.info(lease.instance_id)
        else:
            spec = InstanceSpec(
                instance_id=lease.instance_id,
                vcpus=offer.vcpus,
                memory_mib=offer.memory_mib,
                max_vcpus=offer.max_vcpus,
                boot=offer.boot,
                disk_gib=offer.disk_gib,
                ssh_public_keys=tuple(self.chain.ssh_keys(rental.consumer)),
                network=NetworkSpec(
                    mode=offer.network,
                    host_address=offer.ssh_host,
                    isolation_group=f"rental-{lease.rental_id}",
                ),
                metadata={"rental": str(lease.rental_id), "consumer": rental.consumer},
            )
            try:
                info = self.driver.spawn(spec)
            except DriverError as exc:
                self.state.record("error", f"rental {lease.rental_id}: spawn failed: {exc}")
                if rental.state == RentalState.PENDING:
                    self.chain.decline(lease.rental_id)
                    return self._stop(lease, f"declined: {exc}", failed=True)
                raise
        self.state.record("vm", f"rental {lease.rental_id}: VM {info.instance_id} running")
        return self.state.put_lease(
            replace(lease, state=LeaseState.RUNNING, ssh_port=info.ssh_port, end=rental.end)
        )

    def _heartbeat(self, lease: Lease, rental: Rental, now: int) -> None:
        interval = self.chain.market_config().heartbeat_interval
        last = max(rental.last_heartbeat, self._heartbeats.get(lease.rental_id, 0))
        if interval and now - last >= interval // 2:
            if self.driver.info(lease.instance_id).state.value != "running":
                return  # no heartbeat for a VM that is not up
            self.chain.heartbeat(lease.rental_id)
            self._heartbeats[lease.rental_id] = now

    def _stop(self, lease: Lease, why: str, *, failed: bool = False) -> Lease:
        lease = self.state.put_lease(replace(lease, state=LeaseState.STOPPING, note=why))
        if lease.instance_id in self.driver.list_instances():
            self.driver.destroy(lease.instance_id)
        final = LeaseState.FAILED if failed else LeaseState.DONE
        self.state.record("stop", f"rental {lease.rental_id}: {why}; VM destroyed")
        return self.state.put_lease(replace(lease, state=final))

    # ------------------------------------------------------------------ tasks

    def _scan_tasks(self) -> None:
        seen = self.state.cursor(_ORDERS)
        count = self.chain.order_count()
        now = self.chain.now()
        for order_id in range(seen + 1, count + 1):
            order = self.chain.order(order_id)
            is_open = order.kind == OrderKind.TASK and order.state == OrderState.OPEN
            if is_open and now < order.deadline and self.state.task(order_id) is None:
                self._take(order)
            self.state.set_cursor(_ORDERS, order_id)

    def _take(self, order: Order) -> None:
        busy = {t.token_id for t in self.state.tasks(TaskState.TAKING, TaskState.TAKEN)}
        for offer in self.offers.values():
            if not offer.take_tasks or offer.token_id in busy:
                continue
            record = TaskRecord(
                order_id=order.order_id, token_id=offer.token_id, state=TaskState.TAKING
            )
            self.state.put_task(record)
            try:
                self.chain.take_task(order.order_id, offer.token_id)
            except (MarketError, PermissionError) as exc:  # specs not met, taken by another...
                self.state.put_task(replace(record, state=TaskState.FAILED, note=str(exc)))
                continue
            self.state.put_task(replace(record, state=TaskState.TAKEN))
            self.state.record("task", f"took task {order.order_id} with token {offer.token_id}")
            return

    def _work(self, task: TaskRecord) -> None:
        order = self.chain.order(task.order_id)
        if task.state == TaskState.TAKING:  # crashed around takeTask: the chain says
            mine = order.state != OrderState.OPEN and order.token_id == task.token_id
            task = self.state.put_task(
                replace(task, state=TaskState.TAKEN if mine else TaskState.FAILED)
            )
            if not mine:
                return
        if order.state != OrderState.TAKEN:  # submitted, expired, disputed...: nothing to do
            self.state.put_task(replace(task, state=TaskState.SUBMITTED, note=order.state.name))
            return
        if self.chain.now() > order.deadline:
            self.state.put_task(replace(task, state=TaskState.FAILED, note="deadline passed"))
            return
        if task.state in (TaskState.TAKEN, TaskState.RUNNING):
            task = self._run(task, order)
            if task.state != TaskState.STORED:
                return
        self.chain.submit_result(task.order_id, task.result_cid, bytes.fromhex(task.result_hash))
        self.state.put_task(replace(task, state=TaskState.SUBMITTED))
        self.state.record("task", f"task {task.order_id}: result {task.result_cid} submitted")

    def _run(self, task: TaskRecord, order: Order) -> TaskRecord:
        assert self.runner is not None
        task = self.state.put_task(replace(task, state=TaskState.RUNNING))
        try:
            doc = decode_spec(order.spec_cid, self.store)
        except ConfigError as exc:
            return self.state.put_task(replace(task, state=TaskState.FAILED, note=str(exc)))
        if doc.inputs and self.store is None:
            return self.state.put_task(
                replace(task, state=TaskState.FAILED, note="inputs need an object store")
            )
        store = self.store
        inputs = {name: store.path_of(cid) for name, cid in doc.inputs.items()} if store else {}
        out = self.work_dir / f"task-{task.order_id}"
        shutil.rmtree(out, ignore_errors=True)  # a run cut short by a crash starts over
        out.mkdir(parents=True)
        result = self.runner.run(
            TaskSpec(
                task_id=f"task-{task.order_id}",
                argv=doc.argv,
                inputs=inputs,
                env=doc.env,
                limits=doc.limits,
            ),
            out,
        )
        if store is None:
            return self.state.put_task(
                replace(task, state=TaskState.FAILED, note="results need an object store")
            )
        cid, digest = result_manifest(result, store)
        self.state.record("task", f"task {task.order_id}: {result.outcome.value}, result {cid}")
        return self.state.put_task(
            replace(task, state=TaskState.STORED, result_cid=cid, result_hash=digest.hex())
        )
