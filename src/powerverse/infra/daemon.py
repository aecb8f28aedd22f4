"""``pv provider up``: the agent daemon — the reconcile loop plus the signed REST API.

The provider directory holds ``provider.yaml``, the agent's key (``agent.key``, 0600), its
state database, the VMs' usage samples (``metering.sqlite``, every 30 s), the VMs' files
(``vms/``), the object store (``objects/``) and task work directories (``tasks/``). The daemon
re-adopts running VMs, then every ``poll_seconds`` runs one :meth:`Agent.step`; the API runs
beside it (uvicorn in a thread). SIGTERM or Ctrl-C stop it cleanly; VMs keep running (they
belong to leases, not to the daemon).
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.contracts.addresses import DIVIDEND_POOL
from powerverse.infra.agent import Agent, Offer
from powerverse.infra.api import AgentIdentity, LeaseView, create_app
from powerverse.infra.attestation import SignedReport
from powerverse.infra.auth import SqliteNonceStore
from powerverse.infra.chainport import MarketChain
from powerverse.infra.challenge import Challenge, ChallengeLimits, ChallengeRefused, respond
from powerverse.infra.config import ProviderConfig
from powerverse.infra.drivers.qemu import QemuDriver
from powerverse.infra.drivers.routednet import RoutedNetwork
from powerverse.infra.drivers.sandbox import SandboxRunner
from powerverse.infra.exceptions import ConfigError
from powerverse.infra.hardware import discover
from powerverse.infra.metering import Meter
from powerverse.infra.objects import ObjectStore
from powerverse.infra.state import AgentState, LeaseState
from powerverse.market.admin import Admin
from powerverse.market.client import ChainClient
from powerverse.market.dividends import DividendPool
from powerverse.market.resources import Resources

__all__ = [
    "AGENT_KEY_FILE",
    "ChainLeases",
    "ChainVerifiedChallenges",
    "Daemon",
    "load_or_create_agent_key",
]

log = logging.getLogger(__name__)

AGENT_KEY_FILE = "agent.key"
METER_SECONDS = 30.0
"""How often the daemon samples every VM's usage (metering.sqlite)."""


def load_or_create_agent_key(directory: Path) -> LocalAccount:
    """The agent's account key (created, readable by the owner only, on first use)."""
    path = directory / AGENT_KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("0x" + secrets.token_hex(32) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    try:
        account: LocalAccount = Account.from_key(path.read_text().strip())
    except ValueError as exc:
        raise ConfigError(f"{path} is not a private key: {exc}") from None
    return account


@dataclass
class ChainLeases:
    """The API's view of leases: the agent's records (the chain is the daemon's job)."""

    state: AgentState

    def lease(self, rental_id: int) -> LeaseView | None:
        lease = self.state.lease(rental_id)
        if lease is None:
            return None
        return LeaseView(
            rental_id=rental_id,
            lessee=lease.consumer,
            instance_id=lease.instance_id,
            end=lease.end,
            active=lease.state in (LeaseState.RUNNING, LeaseState.CONFIRMED),
        )


@dataclass
class ChainVerifiedChallenges:
    """Answers re-verification challenges from holders of ResourceNFT's VERIFIER_ROLE for the
    tokens this agent serves, against the parameters claimed on chain."""

    account: LocalAccount
    client: ChainClient
    token_ids: frozenset[int]
    work_dir: Path
    location: Any  # config.LocationConfig
    limits: ChallengeLimits = field(default_factory=ChallengeLimits)

    def __call__(self, challenge: Challenge) -> SignedReport:
        verifier = challenge.verify()
        if not Admin(self.client).has_role("ResourceNFT", "VERIFIER_ROLE", verifier):
            raise ChallengeRefused(f"{verifier} holds no VERIFIER_ROLE on ResourceNFT")
        if challenge.token_id not in self.token_ids:
            raise ChallengeRefused(f"token {challenge.token_id} is not served by this agent")
        claimed = Resources(self.client).get(challenge.token_id).perform_para
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log.info("challenge %s from %s for token %d", challenge.hash, verifier, challenge.token_id)
        return respond(
            challenge,
            account=self.account,
            hardware=discover(self.location),
            claimed=claimed,
            disk_dir=self.work_dir,
            verifiers=None,  # checked above, on chain
            token_ids=self.token_ids,
            limits=self.limits,
        )


class Daemon:
    """One provider host's agent process."""

    def __init__(
        self,
        directory: Path,
        config: ProviderConfig,
        *,
        provider: LocalAccount | None = None,
        accel: str = "tcg",
    ) -> None:
        self.directory = directory
        self.config = config
        self.account = load_or_create_agent_key(directory)
        agent_client = self.agent_client = ChainClient(config.rpc_url, self.account)
        provider_client = ChainClient(config.rpc_url, provider) if provider else None
        self.chain = MarketChain(agent_client, provider_client)
        self.state = AgentState(directory / "agent.sqlite")
        self.network = config.network.effective_mode()
        self.driver = QemuDriver(
            directory / "vms", accel=accel, routed=RoutedNetwork(pool=config.network.pool)
        )
        self.store = ObjectStore(directory / "objects")
        self.meter = Meter(self.driver, directory / "metering.sqlite")
        self._last_sample = 0.0
        offers = {
            r.token_id: Offer(
                token_id=r.token_id,
                vcpus=r.vcpus,
                memory_mib=r.memory_mib,
                max_vcpus=r.max_vcpus,
                disk_gib=r.disk_gib,
                boot=r.image.boot_source(directory),
                take_tasks=r.take_tasks and provider is not None,
                network=self.network,
                ssh_host=config.network.ssh_host or "127.0.0.1",
            )
            for r in config.resources
            if r.token_id is not None
        }
        if not offers:
            raise ConfigError("no registered resource: run `pv provider register` first")
        self.agent = Agent(
            state=self.state,
            chain=self.chain,
            driver=self.driver,
            offers=offers,
            runner=SandboxRunner(),
            store=self.store,
            work_dir=directory / "tasks",
        )
        # Device heartbeats for the monthly dividends, on chains that have the dividend pool.
        if agent_client.w3.eth.get_code(agent_client.w3.to_checksum_address(DIVIDEND_POOL)):
            self.agent.dividends = DividendPool(agent_client)
        self.identity = AgentIdentity(
            chain_id=agent_client.chain_id,
            address=self.account.address,
            accel=accel,
            resources=tuple(sorted(offers)),
        )
        self._stop = threading.Event()
        self._server: uvicorn.Server | None = None

    def serve_api(self) -> None:
        """Start the REST API in a background thread."""
        location = self.config.location
        app = create_app(
            identity=self.identity,
            leases=ChainLeases(self.state),
            driver=self.driver,
            nonces=SqliteNonceStore(self.directory / "nonces.sqlite"),
            challenges=ChainVerifiedChallenges(
                account=self.account,
                client=self.agent_client,
                token_ids=frozenset(self.identity.resources),
                work_dir=self.directory / "challenge",
                location=location,
            ),
        )
        api = self.config.api
        config = uvicorn.Config(app, host=api.host, port=api.port, log_level="warning")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, name="agent-api", daemon=True).start()

    def stop(self, *_: object) -> None:
        """Ask the loop to end after the current step."""
        self._stop.set()

    def run(self) -> None:
        """Adopt running VMs, serve the API, reconcile until stopped."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        recovered = False
        self.serve_api()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if not recovered:  # retried until it works: a crash must not end the agent
                    adopted = self.agent.recover()
                    recovered = True
                    log.info(
                        "agent %s: adopted %d VM(s); %s networking",
                        self.account.address,
                        len(adopted),
                        self.network,
                    )
                self.agent.step()
                if time.monotonic() - self._last_sample >= METER_SECONDS:
                    self._last_sample = time.monotonic()
                    self.meter.sample()
            except Exception:  # the chain may be unreachable for a while: keep going
                log.exception("recovery failed" if not recovered else "reconcile step failed")
            self._stop.wait(max(0.0, self.config.poll_seconds - (time.monotonic() - started)))
        if self._server is not None:
            self._server.should_exit = True
        self.state.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()
