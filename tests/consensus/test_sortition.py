"""VRF sortition: the Binomial(w, tau/W) law, Sybil resistance, proofs, exactness, bad input."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import pytest
from eth_hash.auto import keccak

from powerverse.consensus.exceptions import ConsensusError, SortitionError
from powerverse.consensus.sortition import HASH_LEN, priority, select, sortition, verify_sort
from powerverse.crypto import vrf

P_VALUE_FLOOR = 1e-4
SLIVER = Fraction(1, 2**285)  # the documented relative error bound of the partial sums
ZERO = bytes(HASH_LEN)
ONES = b"\xff" * HASH_LEN
LARGE_W = 1_400_000_000


# --- statistics helpers --------------------------------------------------------------------


def chi2_sf(stat: float, df: int) -> float:
    """P(X >= stat) for X ~ chi-square(df): regularized upper incomplete gamma Q(df/2, stat/2)."""
    s, x = df / 2, stat / 2
    if x <= 0:
        return 1.0
    log_prefix = -x + s * math.log(x) - math.lgamma(s)
    if x < s + 1:  # series for the lower function P
        term = total = 1 / s
        n = 0
        while term > total * 1e-16:
            n += 1
            term *= x / (s + n)
            total += term
        return max(0.0, 1 - total * math.exp(log_prefix))
    tiny = 1e-300  # modified Lentz continued fraction for Q
    b = x + 1 - s
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return math.exp(log_prefix) * h


def binomial_pmf(w: int, tau: int, W: int) -> list[float]:
    """P(j = k) for k = 0.. until the remaining tail is below 1e-12 (exact for w <= 200)."""
    if w <= 200:
        a = W - tau
        denominator = W**w
        return [
            float(Fraction(math.comb(w, k) * tau**k * a ** (w - k), denominator))
            for k in range(w + 1)
        ]
    p = tau / W
    log_b = w * math.log1p(-p)  # log B(0), then the ratio recurrence in log space
    out: list[float] = []
    k = 0
    while k <= w:
        out.append(math.exp(log_b))
        if k > w * p and 1 - math.fsum(out) < 1e-12:
            break
        log_b += math.log((w - k) * p) - math.log((k + 1) * (1 - p))
        k += 1
    return out


def chi_square_p(samples: Sequence[int], pmf: Sequence[float]) -> float:
    """Goodness-of-fit p-value of samples against pmf, bins merged to >= 10 expected each."""
    n = len(samples)
    counts = Counter(samples)
    assert all(k >= 0 for k in counts)
    bins: list[tuple[float, int]] = []
    expected = 0.0
    observed = 0
    for k, prob in enumerate(pmf):
        expected += n * prob
        observed += counts.get(k, 0)
        if expected >= 10 and n * (1 - math.fsum(pmf[: k + 1])) >= 10:
            bins.append((expected, observed))
            expected, observed = 0.0, 0
    expected += n * max(0.0, 1 - math.fsum(pmf))  # the tail beyond the listed pmf
    observed += sum(c for k, c in counts.items() if k >= len(pmf))
    bins.append((expected, observed))
    assert len(bins) >= 2, "degenerate distribution: nothing to test"
    stat = sum((o - e) ** 2 / e for e, o in bins)
    return chi2_sf(stat, len(bins) - 1)


def random_hashes(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(HASH_LEN) for _ in range(count)]


def exact_walk(h: int, tau: int, w: int, W: int) -> tuple[int, Fraction]:
    """Exact j for the integer hash h with Fractions, and the boundary CDF(j) above h / 2^512."""
    if tau >= W:
        return w, Fraction(1)
    a, denominator = W - tau, W**w
    cumulative = 0
    for j in range(w + 1):
        cumulative += math.comb(w, j) * tau**j * a ** (w - j)
        if h * denominator < cumulative << 512:
            return j, Fraction(cumulative, denominator)
    raise AssertionError("CDF(w) is 1")


def assert_agrees_with_exact(h: int, tau: int, w: int, W: int) -> bool:
    """Assert select matches the exact walk up to the documented bound; True if h is in a sliver."""
    got = select(h.to_bytes(HASH_LEN, "big"), tau, w, W)
    want, boundary = exact_walk(h, tau, w, W)
    in_sliver = boundary * (1 - SLIVER) <= Fraction(h, 2**512)
    assert got >= want, (h, tau, w, W)
    assert got == want or in_sliver, (h, tau, w, W, got, want)
    return in_sliver


# --- the helpers themselves ----------------------------------------------------------------


@pytest.mark.parametrize("x", [0.1, 1.0, 3.0, 7.5, 20.0, 60.0])
def test_chi2_sf_matches_closed_forms(x: float) -> None:
    assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-9)
    assert chi2_sf(x, 4) == pytest.approx(math.exp(-x / 2) * (1 + x / 2), rel=1e-9)


def test_chi_square_p_rejects_a_wrong_distribution() -> None:
    samples = [select(h, 30, 60, 100) for h in random_hashes(7, 5000)]
    assert chi_square_p(samples, binomial_pmf(60, 30, 100)) > P_VALUE_FLOOR
    assert chi_square_p(samples, binomial_pmf(60, 32, 100)) < P_VALUE_FLOOR
    assert chi_square_p([s + 1 for s in samples], binomial_pmf(60, 30, 100)) < P_VALUE_FLOOR


# --- the distribution ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("w", "tau", "W", "count"),
    [
        (1, 1, 2, 20_000),
        (10, 3, 20, 20_000),
        (60, 30, 100, 20_000),
        (37, 5, 1000, 20_000),
        (5000, 100, 10_000, 5_000),
        (LARGE_W, 20, 10_000_000_000, 20_000),
        (LARGE_W, 50, LARGE_W + 1, 4_000),
    ],
)
def test_j_follows_the_binomial_law(w: int, tau: int, W: int, count: int) -> None:
    samples = [select(h, tau, w, W) for h in random_hashes(w ^ tau ^ W, count)]
    assert all(0 <= j <= w for j in samples)
    assert chi_square_p(samples, binomial_pmf(w, tau, W)) > P_VALUE_FLOOR


@pytest.fixture(scope="module")
def proofs() -> list[tuple[bytes, bytes, bytes, bytes, bytes, int]]:
    """300 real sortition runs: (pk, seed, role, hash, proof, j) for w=10, tau=5, W=20."""
    rng = random.Random(2024)
    out = []
    for _ in range(30):
        sk, pk = vrf.keypair(rng.randbytes(32))
        for i in range(10):
            seed, role = rng.randbytes(32), b"committee" + i.to_bytes(8, "big")
            hash_, proof, j = sortition(sk, seed, 5, role, 10, 20)
            out.append((pk, seed, role, hash_, proof, j))
    return out


def test_real_vrf_outputs_follow_the_binomial_law(
    proofs: list[tuple[bytes, bytes, bytes, bytes, bytes, int]],
) -> None:
    samples = [j for *_, j in proofs]
    assert chi_square_p(samples, binomial_pmf(10, 5, 20)) > P_VALUE_FLOOR


@pytest.mark.parametrize(
    ("parts", "tau", "W", "count"),
    [
        ((15, 25), 30, 100, 20_000),
        ((1, 1, 1, 1, 1, 1, 1, 1), 3, 10, 10_000),
        ((7, 2, 31), 12, 50, 10_000),
        ((300_000_000, 700_000_000), 20, 10_000_000_000, 20_000),
    ],
)
def test_splitting_stake_does_not_change_the_distribution(
    parts: tuple[int, ...], tau: int, W: int, count: int
) -> None:
    rng = random.Random(sum(parts) ^ tau)
    totals = [
        sum(select(rng.randbytes(HASH_LEN), tau, part, W) for part in parts) for _ in range(count)
    ]
    assert chi_square_p(totals, binomial_pmf(sum(parts), tau, W)) > P_VALUE_FLOOR


# --- exactness -----------------------------------------------------------------------------


def test_select_matches_an_exact_fraction_walk() -> None:
    rng = random.Random(99)
    slivers = 0
    cases = 3000
    for _ in range(cases):
        W = rng.randint(1, 100)
        w = rng.randint(0, min(W, 60))
        tau = rng.randint(1, 120)
        slivers += assert_agrees_with_exact(rng.getrandbits(512), tau, w, W)
    assert slivers <= cases // 1000


@pytest.mark.parametrize(
    ("w", "tau", "W"), [(1, 1, 2), (5, 5, 10), (8, 3, 16), (12, 4, 30), (40, 20, 41), (60, 1, 97)]
)
def test_hashes_next_to_every_boundary(w: int, tau: int, W: int) -> None:
    # The hash just below CDF(j) may round up (it is inside the documented sliver); the hash
    # just above must not: select never returns less than the exact j.
    a, denominator = W - tau, W**w
    cumulative = 0
    for j in range(w):
        cumulative += math.comb(w, j) * tau**j * a ** (w - j)
        above = -((-cumulative << 512) // denominator)  # ceil(CDF(j) * 2^512)
        for h in (above - 2, above - 1, above, above + 1):
            if 0 <= h < 2**512:
                assert_agrees_with_exact(h, tau, w, W)


def test_select_is_monotone_in_the_hash() -> None:
    for w, tau, W in [(60, 30, 100), (LARGE_W, 20, 10_000_000_000)]:
        hashes = sorted(random_hashes(5, 500))
        js = [select(h, tau, w, W) for h in hashes]
        assert js == sorted(js)


# --- extreme parameters --------------------------------------------------------------------


@pytest.mark.parametrize("hash_", [ZERO, ONES, bytes(range(64))])
def test_tau_at_least_W_selects_all_stake(hash_: bytes) -> None:
    for tau in (100, 101, 10_000):
        assert select(hash_, tau, 37, 100) == 37
        assert select(hash_, tau, 100, 100) == 100
        assert select(hash_, tau, 0, 100) == 0


@pytest.mark.parametrize("hash_", [ZERO, ONES, bytes(range(64))])
def test_no_stake_is_never_selected(hash_: bytes) -> None:
    assert select(hash_, 20, 0, 1000) == 0
    assert select(hash_, 20, 0, LARGE_W) == 0


@pytest.mark.parametrize(
    ("tau", "w", "W"),
    [(1, 1, 2), (20, 60, 100), (1, 1, 10**30), (20, LARGE_W, 10**10), (2000, LARGE_W, LARGE_W)],
)
def test_all_zero_hash_selects_nothing(tau: int, w: int, W: int) -> None:
    # CDF(0) = (1 - p)^w > 0 = hash / 2^512, even when (1 - p)^w is about e^-2000.
    assert select(ZERO, tau, w, W) == 0


def test_all_ones_hash_reaches_the_far_tail() -> None:
    # CDF(j) > 1 - 2^-512 first at j = w when the tail is fat enough ...
    assert select(ONES, 30, 60, 100) == 60
    assert select(ONES, 1, 1, 10**30) == 1
    # ... otherwise where the tail drops below 2^-512: for w = 10^6, p = 10^-30 that is j = 6,
    # as B(6) ~ 1.4e-147 > 2^-512 ~ 7.5e-155 > B(7) ~ 2e-172.
    assert select(ONES, 1, 10**6, 10**30) == 6
    j = select(ONES, 2000, LARGE_W, LARGE_W)
    assert 2000 + 20 * math.sqrt(2000) < j < 2000 + 40 * math.sqrt(2000)


def test_tiny_p_selects_almost_nobody() -> None:
    js = [select(h, 1, 10**6, 10**30) for h in random_hashes(3, 2000)]
    assert js == [0] * 2000


@pytest.mark.parametrize(
    ("tau", "W", "count"),
    [(200, 2_000_000_000, 2000), (2000, LARGE_W, 200), (10_000, LARGE_W, 20)],
)
def test_very_large_stake_is_fast_and_plausible(tau: int, W: int, count: int) -> None:
    js = [select(h, tau, LARGE_W, W) for h in random_hashes(tau ^ W, count)]
    mean = tau * LARGE_W / W
    sd = math.sqrt(mean * (1 - tau / W))
    assert abs(sum(js) / count - mean) < 5 * sd / math.sqrt(count)
    assert all(abs(j - mean) < 8 * sd for j in js)


# --- determinism ---------------------------------------------------------------------------

# Pinned once (hash = SHA-512(b"powerverse/sortition/" + [i])) so that any change of the
# arithmetic that alters a result is caught: every node must agree on j across versions.
# The large-w ones were also checked against a 1200-digit decimal walk.
PINNED = [
    (0, 20, 100, 1000, 1),
    (1, 20, 100, 1000, 0),
    (2, 3, 10, 20, 2),
    (3, 30, 60, 100, 19),
    (4, 20, LARGE_W, 10_000_000_000, 3),
    (5, 2000, LARGE_W, 2_000_000_000, 1427),
    (6, 2000, LARGE_W, LARGE_W, 1971),
    (7, 10_000, LARGE_W, LARGE_W, 10067),
    (8, 1, 10**6, 10**30, 0),
]
# An all-ones hash lies within 2^-512 of 1, inside the documented sliver below the first
# boundary CDF(j) > 1 - 2^-512: select may return more than the exact j. The first vector is
# exact; in the second the exact j is 3296 and the walk's stop rule returns one more.
PINNED_ONES = [(20, LARGE_W, 10_000_000_000, 124), (2000, LARGE_W, LARGE_W, 3297)]


def pinned_hash(i: int) -> bytes:
    return hashlib.sha512(b"powerverse/sortition/" + bytes([i])).digest()


@pytest.mark.parametrize(("i", "tau", "w", "W", "j"), PINNED)
def test_pinned_vectors(i: int, tau: int, w: int, W: int, j: int) -> None:
    assert select(pinned_hash(i), tau, w, W) == j


@pytest.mark.parametrize(("tau", "w", "W", "j"), PINNED_ONES)
def test_pinned_all_ones_vectors(tau: int, w: int, W: int, j: int) -> None:
    assert select(ONES, tau, w, W) == j


def test_pinned_sortition_run() -> None:
    sk, pk = vrf.keypair(bytes(range(32)))
    hash_, proof, j = sortition(sk, bytes(32), 2000, b"committee", 700, 1000)
    assert hash_ == vrf.proof_to_hash(proof)
    assert j == 700
    assert verify_sort(pk, hash_, proof, bytes(32), 2000, b"committee", 700, 1000) == 700
    _, _, j = sortition(sk, bytes(32), 400, b"committee", 700, 1000)
    assert j == 288


# --- proofs --------------------------------------------------------------------------------


def test_verify_sort_agrees_with_sortition(
    proofs: list[tuple[bytes, bytes, bytes, bytes, bytes, int]],
) -> None:
    for pk, seed, role, hash_, proof, j in proofs:
        assert verify_sort(pk, hash_, proof, seed, 5, role, 10, 20) == j
    assert any(j > 0 for *_, j in proofs)


@pytest.fixture
def honest() -> dict[str, Any]:
    """A sortition run where every unit is selected (tau >= W), so j = w = 7."""
    sk, pk = vrf.keypair(b"\x11" * 32)
    seed, role = b"\x22" * 32, b"proposer" + bytes(12)
    hash_, proof, j = sortition(sk, seed, 50, role, 7, 50)
    assert j == 7
    return {
        "pk": pk,
        "hash": hash_,
        "proof": proof,
        "seed": seed,
        "tau": 50,
        "role": role,
        "w": 7,
        "W": 50,
    }


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def test_verify_sort_accepts_the_honest_run(honest: dict[str, Any]) -> None:
    assert verify_sort(**honest) == 7


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: {**d, "hash": _flip(d["hash"], 0)},
        lambda d: {**d, "hash": _flip(d["hash"], 63)},
        lambda d: {**d, "proof": _flip(d["proof"], 0)},
        lambda d: {**d, "proof": _flip(d["proof"], 40)},
        lambda d: {**d, "proof": _flip(d["proof"], 79)},
        lambda d: {**d, "seed": _flip(d["seed"], 5)},
        lambda d: {**d, "seed": d["seed"] + b"\x00"},
        lambda d: {**d, "role": b"committee" + bytes(8)},
        lambda d: {**d, "role": _flip(d["role"], 19)},
        lambda d: {**d, "pk": vrf.keypair(b"\x12" * 32)[1]},
    ],
    ids=[
        "hash-first-byte",
        "hash-last-byte",
        "proof-gamma",
        "proof-c",
        "proof-s",
        "seed",
        "seed-longer",
        "role",
        "role-last-byte",
        "other-key",
    ],
)
def test_tampered_credentials_give_zero(
    honest: dict[str, Any], tamper: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    assert verify_sort(**tamper(honest)) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"proof": b""},
        {"proof": bytes(79)},
        {"proof": bytes(81)},
        {"proof": bytes(80)},
        {"proof": b"\xff" * 80},
        {"proof": random.Random(1).randbytes(80)},
        {"proof": "not a proof"},
        {"proof": None},
        {"hash": b""},
        {"hash": bytes(63)},
        {"hash": "not a hash"},
        {"pk": b""},
        {"pk": bytes(32)},
        {"pk": b"\xff" * 32},
        {"pk": (1).to_bytes(32, "little")},  # the identity point: small order
        {"pk": None},
    ],
)
def test_malformed_credentials_give_zero(honest: dict[str, Any], bad: dict[str, Any]) -> None:
    assert verify_sort(**{**honest, **bad}) == 0


def test_verify_sort_with_no_stake_is_zero(honest: dict[str, Any]) -> None:
    assert verify_sort(**{**honest, "w": 0}) == 0


def test_sortition_accepts_bytes_like_input() -> None:
    sk = bytearray(b"\x05" * 32)
    hash_, proof, j = sortition(bytes(sk), bytearray(b"s" * 32), 10, memoryview(b"r"), 10, 10)
    assert j == 10
    assert select(bytearray(hash_), 10, 10, 10) == 10
    pk = vrf.keypair(bytes(sk))[1]
    assert verify_sort(pk, bytearray(hash_), bytearray(proof), b"s" * 32, 10, b"r", 10, 10) == 10


# --- bad input -----------------------------------------------------------------------------

BAD_PARAMS = [
    (0, 1, 10),
    (-1, 1, 10),
    (5, -1, 10),
    (5, 11, 10),
    (5, 0, 0),
    (5, 1, -3),
    (5, 0, -3),
    (True, 1, 10),
    (5, True, 10),
    (5.0, 1, 10),
    (5, 1.0, 10),
    (5, 1, 10.0),
    (5, None, 10),
]


@pytest.mark.parametrize(("tau", "w", "W"), BAD_PARAMS)
def test_bad_parameters_are_refused(tau: Any, w: Any, W: Any) -> None:
    sk, pk = vrf.keypair(bytes(32))
    with pytest.raises(SortitionError):
        select(ONES, tau, w, W)
    with pytest.raises(ValueError):
        sortition(sk, b"seed", tau, b"role", w, W)
    proof = vrf.prove(sk, b"seedrole")
    with pytest.raises(ConsensusError):
        verify_sort(pk, vrf.proof_to_hash(proof), proof, b"seed", tau, b"role", w, W)


@pytest.mark.parametrize("hash_", [b"", bytes(63), bytes(65), "ab" * 32, None, 7, list(ZERO)])
def test_select_refuses_a_malformed_hash(hash_: Any) -> None:
    with pytest.raises(SortitionError):
        select(hash_, 20, 10, 100)
    with pytest.raises(ValueError):
        priority(hash_, 1)


@pytest.mark.parametrize(
    ("seed", "role"), [("seed", b"role"), (b"seed", "role"), (None, b""), (b"", 3)]
)
def test_non_bytes_seed_or_role_is_refused(seed: Any, role: Any) -> None:
    sk, pk = vrf.keypair(bytes(32))
    with pytest.raises(SortitionError):
        sortition(sk, seed, 20, role, 10, 100)
    with pytest.raises(SortitionError):
        verify_sort(pk, ZERO, bytes(80), seed, 20, role, 10, 100)


@pytest.mark.parametrize("sk", [b"", bytes(31), bytes(33), "k" * 32, None])
def test_bad_secret_key_is_refused(sk: Any) -> None:
    with pytest.raises(SortitionError):
        sortition(sk, b"seed", 20, b"role", 10, 100)


# --- priority ------------------------------------------------------------------------------


def test_priority_is_the_lowest_sub_user_hash() -> None:
    hash_ = pinned_hash(0)
    draws = [keccak(hash_ + i.to_bytes(4, "big")) for i in range(1, 51)]
    assert priority(hash_, 1) == draws[0]
    for j in (2, 7, 50):
        assert priority(hash_, j) == min(draws[:j])
    assert [priority(hash_, j) for j in range(1, 51)] == sorted(
        (priority(hash_, j) for j in range(1, 51)), reverse=True
    )


@pytest.mark.parametrize("j", [0, -1, 2**32, True, 1.0, None])
def test_priority_refuses_a_bad_count(j: Any) -> None:
    with pytest.raises(ValueError):
        priority(ZERO, j)
