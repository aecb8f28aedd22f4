"""Signed agent requests: every tampered field, replays, expiry, foreign agents and malformed
headers are refused; the documented scheme (and its test vector) is what the code does."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.infra import auth
from powerverse.infra.auth import (
    MAX_SKEW,
    MemoryNonceStore,
    NonceStore,
    SqliteNonceStore,
    Verified,
    request_digest,
    sign_request,
    verify_request,
)
from powerverse.infra.exceptions import AuthError

ALICE: LocalAccount = Account.from_key(b"\x01" * 32)
MALLORY: LocalAccount = Account.from_key(b"\x02" * 32)
AGENT = "0x" + "ab" * 20
CHAIN = 31337
NOW = 1_800_000_000
BODY = b'{"action":"reboot"}'
PATH = "/v1/leases/3/actions"


class Clock:
    """A settable clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Req:
    """What a signature covers besides its headers."""

    chain_id: int = CHAIN
    agent: str = AGENT
    method: str = "POST"
    path: str = PATH
    body: bytes = BODY


def signed(
    account: LocalAccount = ALICE,
    req: Req = Req(),
    *,
    timestamp: int = NOW,
    nonce: bytes | None = None,
) -> dict[str, str]:
    return sign_request(
        account,
        chain_id=req.chain_id,
        agent=req.agent,
        method=req.method,
        path=req.path,
        body=req.body,
        timestamp=timestamp,
        nonce=nonce,
    )


def check(
    headers: dict[str, str],
    req: Req = Req(),
    *,
    nonces: NonceStore | None = None,
    clock: Callable[[], float] | None = None,
) -> Verified:
    clock = Clock() if clock is None else clock
    return verify_request(
        headers,
        chain_id=req.chain_id,
        agent=req.agent,
        method=req.method,
        path=req.path,
        body=req.body,
        nonces=MemoryNonceStore(clock) if nonces is None else nonces,
        clock=clock,
    )


def test_a_good_request_names_its_signer_and_public_key() -> None:
    who = check(signed())
    assert who.address == ALICE.address and who.timestamp == NOW
    key = Account._keys.PrivateKey(bytes(ALICE.key)).public_key
    assert who.public_key == key.to_bytes() and len(who.public_key) == 64
    assert who.compressed_public_key == key.to_compressed_bytes()


def test_header_names_are_case_insensitive_and_methods_any_case() -> None:
    headers = {k.lower(): v for k, v in signed(req=Req(method="post")).items()}
    assert check(headers, Req(method="POST")).address == ALICE.address


def test_the_documented_test_vector() -> None:
    """The module docstring's vector, recomputed here from the EIP-712 rules by hand."""
    key = Account.from_key(b"\x46" * 32)
    agent = Account.from_key(b"\x00" * 31 + b"\x01").address
    nonce = b"\x11" * 32

    def type_hash(text: str) -> bytes:
        return keccak(text=text)

    domain = keccak(
        type_hash(
            "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
        )
        + keccak(text="PowerVerse Agent")
        + keccak(text="1")
        + abi_encode(["uint256", "address"], [CHAIN, agent])
    )
    struct = keccak(
        type_hash(
            "Request(string method,string path,bytes32 bodyHash,uint64 timestamp,bytes32 nonce)"
        )
        + keccak(text="POST")
        + keccak(text=PATH)
        + hashlib.sha256(BODY).digest()
        + abi_encode(["uint64"], [NOW])
        + nonce
    )
    digest = keccak(b"\x19\x01" + domain + struct)
    request = {"chain_id": CHAIN, "agent": agent, "method": "POST", "path": PATH, "body": BODY}
    assert request_digest(**request, timestamp=NOW, nonce=nonce) == digest
    headers = sign_request(key, **request, timestamp=NOW, nonce=nonce)
    doc = auth.__doc__ or ""
    assert key.address in doc and agent in doc and "0x" + digest.hex() in doc
    signature = headers["X-PV-Signature"]
    assert signature[:66] in doc and signature[66:] in doc


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.text(min_size=1, max_size=40).map(lambda p: "/" + p),
    body=st.binary(max_size=200),
    chain_id=st.integers(min_value=1, max_value=2**64),
    agent=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    field=st.sampled_from(
        ["method", "path", "body", "chain_id", "agent", "timestamp", "nonce", "address", "sig"]
    ),
    data=st.data(),
)
def test_tampering_with_any_field_is_refused(
    method: str,
    path: str,
    body: bytes,
    chain_id: int,
    agent: str,
    field: str,
    data: st.DataObject,
) -> None:
    request = Req(chain_id=chain_id, agent=agent, method=method, path=path, body=body)
    headers = signed(req=request)
    assert check(headers, request).address == ALICE.address
    changed = request
    methods = st.sampled_from(["GET", "POST", "PUT", "DELETE"])
    if field == "method":
        changed = replace(request, method=data.draw(methods.filter(lambda m: m != method)))
    elif field == "path":
        changed = replace(request, path=data.draw(st.text(max_size=40).filter(lambda p: p != path)))
    elif field == "body":
        changed = replace(
            request, body=data.draw(st.binary(max_size=200).filter(lambda b: b != body))
        )
    elif field == "chain_id":
        chains = st.integers(1, 2**64).filter(lambda c: c != chain_id)
        changed = replace(request, chain_id=data.draw(chains))
    elif field == "agent":
        agents = st.binary(min_size=20, max_size=20).filter(lambda b: b.hex() != agent[2:])
        changed = replace(request, agent="0x" + data.draw(agents).hex())
    elif field == "timestamp":  # still inside the window: only the signature can tell
        skew = data.draw(st.integers(-MAX_SKEW, MAX_SKEW).filter(bool))
        headers = {**headers, "X-PV-Timestamp": str(NOW + skew)}
    elif field == "nonce":
        nonce = headers["X-PV-Nonce"]
        others = st.binary(min_size=32, max_size=32).filter(lambda n: "0x" + n.hex() != nonce)
        headers = {**headers, "X-PV-Nonce": "0x" + data.draw(others).hex()}
    elif field == "address":
        mine = ALICE.address[2:].lower()
        others = st.binary(min_size=20, max_size=20).filter(lambda a: a.hex() != mine)
        headers = {**headers, "X-PV-Address": "0x" + data.draw(others).hex()}
    else:
        raw = bytearray.fromhex(headers["X-PV-Signature"][2:])
        raw[data.draw(st.integers(0, 64))] ^= 1 << data.draw(st.integers(0, 7))
        headers = {**headers, "X-PV-Signature": "0x" + raw.hex()}
    with pytest.raises(AuthError):
        check(headers, changed)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"agent": "0x" + "cd" * 20}, "another agent or chain"),
        ({"chain_id": 1}, "another agent or chain"),
        ({"body": b'{"action":"suspend"}'}, "changed after signing"),
        ({"path": "/v1/leases/4/actions"}, "changed after signing"),
    ],
)
def test_foreign_or_tampered_requests_say_why(change: dict[str, Any], why: str) -> None:
    with pytest.raises(AuthError, match=why):
        check(signed(), replace(Req(), **change))


def test_a_signature_under_someone_elses_address_is_refused() -> None:
    with pytest.raises(AuthError, match=f"not by X-PV-Address {MALLORY.address}"):
        check({**signed(), "X-PV-Address": MALLORY.address})


def test_replays_are_refused_but_nonces_are_per_signer() -> None:
    clock = Clock()
    nonces = MemoryNonceStore(clock)
    nonce = b"\x42" * 32
    headers = signed(nonce=nonce)
    check(headers, nonces=nonces, clock=clock)
    with pytest.raises(AuthError, match="replayed request"):
        check(headers, nonces=nonces, clock=clock)
    check(signed(MALLORY, nonce=nonce), nonces=nonces, clock=clock)  # her own nonce space
    clock.now = NOW + MAX_SKEW  # the timestamp is still good, the nonce still remembered
    with pytest.raises(AuthError, match="replayed request"):
        check(headers, nonces=nonces, clock=clock)
    clock.now = NOW + MAX_SKEW + 1  # now the timestamp is what refuses it
    with pytest.raises(AuthError, match="expired"):
        check(headers, nonces=nonces, clock=clock)


def test_a_refused_request_does_not_use_up_its_nonce() -> None:
    nonces = MemoryNonceStore(Clock())
    headers = signed()
    with pytest.raises(AuthError):
        check(headers, Req(body=b"tampered"), nonces=nonces)
    check(headers, nonces=nonces)


def test_expiry_window_both_ways() -> None:
    check(signed(timestamp=NOW - MAX_SKEW))
    check(signed(timestamp=NOW + MAX_SKEW))
    with pytest.raises(AuthError, match="expired signature: signed 301 s ago"):
        check(signed(timestamp=NOW - MAX_SKEW - 1))
    with pytest.raises(AuthError, match="from the future"):
        check(signed(timestamp=NOW + MAX_SKEW + 1))


@pytest.mark.parametrize(
    "missing", ["X-PV-Address", "X-PV-Timestamp", "X-PV-Nonce", "X-PV-Signature"]
)
def test_missing_headers_are_named(missing: str) -> None:
    headers = {k: v for k, v in signed().items() if k != missing}
    with pytest.raises(AuthError, match=f"missing header\\(s\\) {missing}"):
        check(headers)


@pytest.mark.parametrize(
    ("header", "value", "why"),
    [
        ("X-PV-Address", "alice", "malformed X-PV-Address"),
        ("X-PV-Address", "ab" * 20, "malformed X-PV-Address"),
        ("X-PV-Address", "0x" + "ab" * 21, "malformed X-PV-Address"),
        ("X-PV-Timestamp", "yesterday", "malformed X-PV-Timestamp"),
        ("X-PV-Timestamp", "-1800000000", "malformed X-PV-Timestamp"),
        ("X-PV-Timestamp", "1800000000.5", "malformed X-PV-Timestamp"),
        ("X-PV-Timestamp", "１８００００００００", "malformed X-PV-Timestamp"),  # fullwidth digits
        ("X-PV-Timestamp", "9" * 40, "malformed X-PV-Timestamp"),
        ("X-PV-Nonce", "0x1234", "malformed X-PV-Nonce"),
        ("X-PV-Nonce", "11" * 32, "malformed X-PV-Nonce"),
        ("X-PV-Nonce", "0x" + "zz" * 32, "malformed X-PV-Nonce"),
        ("X-PV-Signature", "0x" + "00" * 64, "malformed X-PV-Signature"),
        ("X-PV-Signature", "0x" + "00" * 64 + "1d", "v byte is 29"),
        ("X-PV-Signature", "0x" + "00" * 64 + "1b", "not a valid signature"),
        ("X-PV-Signature", "0x" + "ff" * 64 + "1b", "not a valid signature"),
    ],
)
def test_malformed_headers_are_refused_by_name(header: str, value: str, why: str) -> None:
    with pytest.raises(AuthError, match=why):
        check({**signed(), header: value})


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=65, max_size=65))
def test_random_signatures_never_pass(raw: bytes) -> None:
    with pytest.raises(AuthError):
        check({**signed(), "X-PV-Signature": "0x" + raw.hex()})


def test_sign_request_refuses_a_short_nonce() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        signed(nonce=b"\x01" * 16)


def test_sqlite_nonces_survive_a_restart_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "nonces.sqlite"
    headers = signed()
    store = SqliteNonceStore(path, clock)
    check(headers, nonces=store, clock=clock)
    store.close()
    restarted = SqliteNonceStore(path, clock)  # a restarted agent
    with pytest.raises(AuthError, match="replayed"):
        check(headers, nonces=restarted, clock=clock)
    assert len(restarted) == 1
    clock.now = NOW + 10 * MAX_SKEW  # long after: forgotten, and the old request is expired
    check(signed(timestamp=NOW + 10 * MAX_SKEW), nonces=restarted, clock=clock)
    assert len(restarted) == 1
    with pytest.raises(AuthError, match="expired"):
        check(headers, nonces=restarted, clock=clock)
    restarted.close()


def test_memory_nonces_are_forgotten_after_the_window() -> None:
    clock = Clock()
    nonces = MemoryNonceStore(clock)
    for i in range(5):
        check(signed(nonce=bytes([i]) * 32), nonces=nonces, clock=clock)
    assert len(nonces) == 5
    clock.now = NOW + 3 * MAX_SKEW
    check(signed(timestamp=int(clock.now)), nonces=nonces, clock=clock)
    assert len(nonces) == 1
