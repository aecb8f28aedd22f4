"""A verifier's re-verification round trip: challenge a resource's agent, judge, flag on chain.

:func:`rechallenge` reads the token from ResourceNFT (its agent's address and endpoint, the
claimed parameters), issues a fresh :class:`~powerverse.infra.challenge.Challenge` signed by the
verifier's key, posts it to the agent (``POST /v1/challenges``), judges the signed answer with
:func:`~powerverse.infra.challenge.evaluate` and, when asked, sends ``ResourceNFT.flag`` with the
answer's evidence hash and the findings as the reason. The CLI is ``pv resource challenge``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount

from powerverse.infra.apiclient import AgentClient
from powerverse.infra.attestation import SignedReport
from powerverse.infra.benchmark import BenchmarkResults
from powerverse.infra.challenge import Challenge, Verdict, evaluate
from powerverse.infra.exceptions import InfraError
from powerverse.market.client import ChainClient
from powerverse.market.receipts import TxInfo
from powerverse.market.resources import Resources

__all__ = ["AgentUnreachable", "ChallengeSizes", "Rechallenge", "rechallenge"]


class AgentUnreachable(InfraError):
    """The agent's endpoint did not answer."""


@dataclass(frozen=True, kw_only=True)
class ChallengeSizes:
    """How much work a challenge asks for, and how long the agent has."""

    window_s: int = 120
    cpu_rounds: int = 2_000_000
    cpu_checkpoints: int = 64
    memory_mib: int = 256
    disk_mib: int = 256


@dataclass(frozen=True, kw_only=True)
class Rechallenge:
    """One re-verification: what was asked, what came back, the verdict, the flag tx if sent."""

    challenge: Challenge
    response: SignedReport
    verdict: Verdict
    flag_tx: TxInfo | None


def rechallenge(
    chain: ChainClient,
    token_id: int,
    *,
    sizes: ChallengeSizes | None = None,
    baseline: BenchmarkResults | None = None,
    tolerance: float = 0.5,
    flag: bool = False,
    agent_url: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Rechallenge:
    """Challenge ``token_id``'s agent as ``chain``'s signer (a VERIFIER_ROLE holder).

    ``agent_url`` overrides the endpoint registered on chain; ``baseline``: the results of the
    evidence the resource was verified with; ``flag``: send ``ResourceNFT.flag`` when the
    verdict is FLAG. Raises InfraError when the agent cannot be reached or refuses, and the
    :mod:`~powerverse.infra.challenge` errors for an answer that cannot be attributed to it."""
    verifier = chain.account
    if verifier is None:
        raise InfraError("a challenge is signed by the verifier: give a signing account")
    assert isinstance(verifier, LocalAccount)
    resources = Resources(chain)
    resource = resources.get(token_id)
    url = agent_url or resource.agent_endpoint
    if not url:
        raise InfraError(f"resource #{token_id} names no agent endpoint; give the agent's URL")
    sizes = sizes or ChallengeSizes()
    now = int(clock())
    challenge = Challenge.issue(
        verifier,
        token_id=token_id,
        issued_at=now,
        deadline=now + sizes.window_s,
        cpu_rounds=sizes.cpu_rounds,
        cpu_checkpoints=sizes.cpu_checkpoints,
        memory_mib=sizes.memory_mib,
        disk_mib=sizes.disk_mib,
    )
    try:
        with AgentClient(url, verifier, agent_address=resource.agent, clock=clock) as agent:
            response = agent.challenge(challenge)
    except httpx.HTTPError as exc:
        raise AgentUnreachable(
            f"cannot reach resource #{token_id}'s agent at {url}: {exc}"
        ) from None
    verdict = evaluate(
        challenge,
        response,
        resource.perform_para,
        tolerance,
        agent=resource.agent,
        baseline=baseline,
        clock=clock,
    )
    flag_tx = None
    if flag and not verdict.ok:
        flag_tx = resources.flag(token_id, verdict.evidence_hash, verdict.reason)
    return Rechallenge(challenge=challenge, response=response, verdict=verdict, flag_tx=flag_tx)
