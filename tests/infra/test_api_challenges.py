"""``POST /v1/challenges`` over a real HTTP server: a verifier's signed challenge is run with the
real benchmarks and answered with the agent's signed report; forged, foreign, expired, oversized,
malformed and concurrent challenges are refused with their own status codes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from fastapi import FastAPI

from powerverse.infra.api import AgentIdentity, ChallengeResponder, create_app
from powerverse.infra.apiclient import AgentApiError, AgentClient
from powerverse.infra.attestation import SignedReport
from powerverse.infra.auth import MemoryNonceStore
from powerverse.infra.challenge import Challenge, ChallengeLimits, evaluate, respond
from powerverse.infra.hardware import HostHardware, discover
from powerverse.market.resources import PerformPara
from tests.infra.test_api import FakeDriver, Leases

AGENT = Account.from_key(b"\x31" * 32)
VERIFIER = Account.from_key(b"\x32" * 32)
STRANGER = Account.from_key(b"\x33" * 32)
CHAIN = 31337
T0 = 1_760_000_000
CLAIM = PerformPara.from_abi((("cpu", 1000, 1), ("", 0, 0, 0), (256, 0), ("ssd", 1, 1, 1)))


class Clock:
    """A settable clock (unix seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _serve(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def _app(clock: Clock, challenges: ChallengeResponder | None) -> FastAPI:
    return create_app(
        identity=AgentIdentity(chain_id=CHAIN, address=AGENT.address, resources=(7,)),
        leases=Leases(),
        driver=FakeDriver(),
        nonces=MemoryNonceStore(clock),
        clock=clock,
        challenges=challenges,
    )


@pytest.fixture(scope="module")
def hardware() -> HostHardware:
    return discover({"region": "test", "latitude": 0.0, "longitude": 0.0}, dmidecode=None)


@pytest.fixture(scope="module")
def agent_url(
    hardware: HostHardware, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Clock]]:
    """An agent that answers VERIFIER's challenges for token 7 with the real benchmarks."""
    clock = Clock(T0)
    disk = tmp_path_factory.mktemp("challenge")

    def responder(challenge: Challenge) -> SignedReport:
        return respond(
            challenge, account=AGENT, hardware=hardware, claimed=CLAIM, disk_dir=disk,
            verifiers=[VERIFIER.address], token_ids={7}, clock=clock, threads=1, gpu=False,
            limits=ChallengeLimits(max_memory_mib=64, max_disk_mib=64),
        )  # fmt: skip

    yield from ((url, clock) for url in _serve(_app(clock, responder)))


def _issue(account: Any = VERIFIER, **kw: Any) -> Challenge:
    sizes = dict(token_id=7, issued_at=T0, deadline=T0 + 600, cpu_rounds=3000, cpu_checkpoints=6,
                 memory_mib=4, disk_mib=2)  # fmt: skip
    return Challenge.issue(account, **(sizes | kw))


def test_a_verifiers_challenge_is_answered_with_a_signed_report(
    agent_url: tuple[str, Clock],
) -> None:
    url, clock = agent_url
    challenge = _issue()
    with AgentClient(url, VERIFIER, agent_address=AGENT.address, clock=clock) as client:
        answer = client.challenge(challenge)
    assert answer.verify(agent=AGENT.address) == AGENT.address
    assert answer.report.challenge == challenge.hash
    assert answer.report.seed == challenge.seed
    assert answer.report.results.cpu.rounds == 3000
    # an honest agent's answer to a modest claim passes the verifier's checks
    modest = PerformPara.from_abi((("cpu", 1, 1), ("", 0, 0, 0), (1, 0), ("ssd", 1, 0, 0)))
    verdict = evaluate(challenge, answer, modest, agent=AGENT.address, clock=clock, samples=None)
    assert verdict.ok, verdict.findings


def _post(url: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else httpx.Request("POST", url, json=body).content
    return httpx.post(url + "/v1/challenges", content=content, timeout=30)


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda: _issue(STRANGER), 403, "not a verifier this agent accepts"),
        (lambda: _issue(token_id=8), 403, "token 8 is not served"),
        (lambda: _issue(memory_mib=65), 403, "memory_mib = 65"),
        (lambda: _issue(issued_at=T0 - 700, deadline=T0 - 1), 410, "deadline"),
    ],
    ids=["foreign-verifier", "foreign-token", "over-limits", "expired"],
)
def test_unwanted_challenges_are_refused_before_running(
    agent_url: tuple[str, Clock], make: Any, status: int, words: str
) -> None:
    url, _ = agent_url
    response = _post(url, make().to_json())
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_a_forged_challenge_gets_401(agent_url: tuple[str, Clock]) -> None:
    url, _ = agent_url
    doc = _issue().to_json() | {"cpu_rounds": 2999}  # altered after signing
    response = _post(url, doc)
    assert response.status_code == 401
    assert "altered or forged" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"kind": "pv-challenge"}', b'{"kind": "other"}', b"\xff\xfe"],
)
def test_malformed_challenges_get_422(agent_url: tuple[str, Clock], body: bytes) -> None:
    url, _ = agent_url
    response = _post(url, body)
    assert response.status_code == 422
    assert "challenge" in response.json()["detail"]


def test_an_oversized_challenge_gets_413(agent_url: tuple[str, Clock]) -> None:
    url, _ = agent_url
    assert _post(url, b"{" + b" " * 70_000 + b"}").status_code == 413


def test_one_challenge_at_a_time_and_none_when_the_agent_takes_none() -> None:
    clock = Clock(T0)
    started, release = threading.Event(), threading.Event()

    def slow(challenge: Challenge) -> SignedReport:
        started.set()
        release.wait(30)
        raise AssertionError("not reached in this test's second request")

    for url in _serve(_app(clock, slow)):
        first = threading.Thread(target=_post, args=(url, _issue().to_json()), daemon=True)
        first.start()
        assert started.wait(30)
        busy = _post(url, _issue().to_json())
        assert busy.status_code == 429
        assert "another challenge is running" in busy.json()["detail"]
        release.set()
        first.join(30)
    for url in _serve(_app(clock, None)):
        client = AgentClient(url, VERIFIER, agent_address=AGENT.address, clock=clock)
        with client, pytest.raises(AgentApiError) as refused:
            client.challenge(_issue())
        assert refused.value.status == 501


def test_openapi_documents_the_challenge_endpoint(agent_url: tuple[str, Clock]) -> None:
    url, _ = agent_url
    spec = httpx.get(url + "/openapi.json", timeout=10).json()
    post = spec["paths"]["/v1/challenges"]["post"]
    assert {"401", "403", "410", "429", "501"} <= set(post["responses"])


def test_the_report_written_as_evidence_round_trips(
    agent_url: tuple[str, Clock], tmp_path: Path
) -> None:
    url, clock = agent_url
    with AgentClient(url, VERIFIER, clock=clock) as client:
        answer = client.challenge(_issue())
    path = tmp_path / "answer.json"
    path.write_text(httpx.Response(200, json=answer.to_json()).text)
    assert SignedReport.from_json(path.read_bytes()) == answer
