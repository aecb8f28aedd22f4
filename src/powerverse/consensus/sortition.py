"""VRF sortition: how many of a validator's stake units a role selects (whitepaper 3.3.1).

As in Algorand (Gilad et al., SOSP 2017, section 5): a validator holding w of the W stake
units is w sub-users, each chosen with probability p = tau / W, so its number of selected
sub-users j follows Binomial(w, p). The expected total over all validators is tau, and
splitting stake over several keys does not change the distribution (Sybil resistance).
``<hash, proof> = VRF_sk(seed || role)`` and j is the index with

    hash / 2^512  in  [ sum_{k<j} B(k; w, p),  sum_{k<=j} B(k; w, p) ).

Stake is counted in whole units of the genesis ``ConsensusParams.stake_unit_wei`` (1 PVC).
``seed || role`` is a plain concatenation, so callers keep it unambiguous (a fixed-length seed).

Only integer arithmetic, fully specified here, so every node computes the same j. Values are
binary "software floats" m * 2^e whose mantissa m has P = 288 + bitlen(w) bits (>= 289) and is
truncated toward zero after every operation; e is an unbounded int, so (1 - p)^w never
underflows (e^-2000 or e^-10000 is just a large negative e). B(0) = ((W - tau) / W)^w by
square-and-multiply, then B(k+1) = B(k) (w - k) tau / ((k + 1)(W - tau)), and the partial
sums S(j) are accumulated in the same format. Each operation loses less than one unit in the
last place (2^(1-P) relative) and always downward; B(0) gathers at most w + 2 bitlen(w) such
losses and each step two more, fewer than 2^(bitlen(w) + 2) in all, so for every j

    CDF(j) (1 - 2^-285) < S(j) <= CDF(j).

Hence select() returns exactly the j above, except that when hash / 2^512 lies in
[CDF(j) (1 - 2^-285), CDF(j)) it may return more than j (never less); a uniformly random hash
falls in such a sliver with probability below 2^-285 per boundary. Past the mode the walk
stops as soon as the remaining tail is provably below 2^-512 (no 64-byte hash reaches it), so
it costs O(j) big-int operations, about mean + a few dozen standard deviations at worst, never
O(w): about 2 ms for tau = 2000 and 10 ms for tau = 10,000 with w near W, on one core.
"""

from __future__ import annotations

import hmac

from eth_hash.auto import keccak

from powerverse.consensus.exceptions import SortitionError
from powerverse.crypto import vrf
from powerverse.crypto.exceptions import CryptoError

__all__ = ["HASH_LEN", "priority", "select", "sortition", "verify_sort"]

HASH_LEN = 64  # bytes of a VRF output (RFC 9381 beta)

_HASH_BITS = 8 * HASH_LEN
_GUARD_BITS = 288  # mantissa bits beyond bitlen(w)
_MAX_PRIORITY_INDEX = 2**32 - 1  # i is encoded in 4 bytes

# A software float: (mantissa, exponent) for mantissa * 2^exponent, mantissa of exactly P bits.
_Float = tuple[int, int]


def sortition(
    sk: bytes, seed: bytes, tau: int, role: bytes, w: int, W: int
) -> tuple[bytes, bytes, int]:
    """Return (hash, proof, j): this key's VRF output for seed || role and its sub-user count."""
    alpha = _alpha(seed, role)
    _check_params(tau, w, W)
    try:
        proof = vrf.prove(sk, alpha)
    except CryptoError as err:
        raise SortitionError(f"bad sortition secret key: {err}") from err
    beta = vrf.proof_to_hash(proof)
    return beta, proof, select(beta, tau, w, W)


def verify_sort(
    pk: bytes, hash: bytes, proof: bytes, seed: bytes, tau: int, role: bytes, w: int, W: int
) -> int:
    """Return the j that proof shows for pk, or 0 if the proof or hash is invalid or j = 0.

    pk, hash and proof come from the network: anything malformed about them gives 0. The
    local parameters (seed, role, tau, w, W) raise SortitionError when invalid.
    """
    alpha = _alpha(seed, role)
    _check_params(tau, w, W)
    if w == 0:
        return 0
    try:
        beta = vrf.verify(pk, proof, alpha)
    except CryptoError:
        return 0
    if not isinstance(hash, bytes | bytearray | memoryview):
        return 0
    if not hmac.compare_digest(beta, bytes(hash)):
        return 0
    return select(beta, tau, w, W)


def select(hash: bytes, tau: int, w: int, W: int) -> int:
    """Return j in [0, w] for a 64-byte hash: the CDF walk over Binomial(w, tau / W)."""
    h = int.from_bytes(_hash_bytes(hash), "big")
    _check_params(tau, w, W)
    if w == 0:
        return 0
    if tau >= W:
        return w
    return _walk(h, tau, w, W)


def priority(hash: bytes, j: int) -> bytes:
    """Return min over i in 1..j of keccak(hash || i as 4 bytes): a proposer's priority.

    Lower wins. Each selected sub-user draws one value, so more sub-users mean better odds.
    """
    data = _hash_bytes(hash)
    if not _is_int(j) or j < 1:
        raise SortitionError(f"priority needs j >= 1 selected sub-users, got {j!r}")
    if j > _MAX_PRIORITY_INDEX:
        raise SortitionError(f"priority index {j} does not fit in 4 bytes")
    best: bytes = keccak(data + (1).to_bytes(4, "big"))
    for i in range(2, j + 1):
        candidate: bytes = keccak(data + i.to_bytes(4, "big"))
        best = min(best, candidate)
    return best


def _walk(h: int, tau: int, w: int, W: int) -> int:
    """The CDF walk for 0 < tau < W and 0 < w <= W (see the module docstring)."""
    a = W - tau
    prec = _GUARD_BITS + w.bit_length()
    term = _power(_scale((1 << (prec - 1), 1 - prec), a, W, prec), w, prec)
    total = term
    for j in range(w):
        if _below(h, total):
            return j
        num = (w - j) * tau  # B(j+1) = B(j) * num / den
        den = (j + 1) * a
        if num < den and _tail_negligible(term, num, den, prec):
            return j
        term = _scale(term, num, den, prec)
        total = _add(total, term, prec)
    return w


def _below(h: int, x: _Float) -> bool:
    """Whether h / 2^512 < x, exactly."""
    m, e = x
    e += _HASH_BITS
    return h < m << e if e >= 0 else h << -e < m


def _tail_negligible(term: _Float, num: int, den: int, prec: int) -> bool:
    """Whether sum_{k>j} B(k) < 2^-512, given the computed B(j) and the ratio num/den < 1.

    The ratios B(k+1)/B(k) decrease in k, so the tail is at most B(j) r / (1 - r) with
    r = num / den, and B(j) < 2 term since term is B(j) less under 2^-285 of it.
    """
    m, e = term
    exponent = e + _HASH_BITS + 1
    if exponent + prec + num.bit_length() - 1 > den.bit_length():
        return False  # m * num * 2^exponent >= 2^(den's bit length) > den - num: skip the product
    return _shift(m * num, exponent) < den - num


def _scale(x: _Float, num: int, den: int, prec: int) -> _Float:
    """Return x * num / den (positive ints), truncated to prec bits."""
    m, e = x
    shift = max(0, den.bit_length() - num.bit_length() + 1)  # quotient keeps >= prec bits
    q = (m * num << shift) // den
    extra = q.bit_length() - prec
    return q >> extra, e + extra - shift


def _add(x: _Float, y: _Float, prec: int) -> _Float:
    """Return x + y truncated to prec bits."""
    (m1, e1), (m2, e2) = (x, y) if x[1] >= y[1] else (y, x)
    gap = e1 - e2
    if gap >= prec:  # y is below one unit in the last place of x: truncation drops it
        return m1, e1
    q = (m1 << gap) + m2
    extra = q.bit_length() - prec
    return q >> extra, e2 + extra


def _mul(x: _Float, y: _Float, prec: int) -> _Float:
    """Return x * y truncated to prec bits."""
    q = x[0] * y[0]
    extra = q.bit_length() - prec
    return q >> extra, x[1] + y[1] + extra


def _power(base: _Float, n: int, prec: int) -> _Float:
    """Return base^n for n >= 1 by left-to-right square-and-multiply (< 2 bitlen(n) steps)."""
    result = base
    for bit in bin(n)[3:]:
        result = _mul(result, result, prec)
        if bit == "1":
            result = _mul(result, base, prec)
    return result


def _shift(value: int, bits: int) -> int:
    """Return floor(value * 2^bits) for value >= 0."""
    return value << bits if bits >= 0 else value >> -bits


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_params(tau: int, w: int, W: int) -> None:
    """Raise SortitionError unless tau > 0 and 0 <= w <= W with W > 0, all ints."""
    for name, value in (("tau", tau), ("w", w), ("W", W)):
        if not _is_int(value):
            raise SortitionError(f"{name} must be an int, got {type(value).__name__}")
    if W <= 0:
        raise SortitionError(f"total stake W must be positive, got {W}")
    if tau <= 0:
        raise SortitionError(f"expected selection tau must be positive, got {tau}")
    if not 0 <= w <= W:
        raise SortitionError(f"stake w must lie in [0, W={W}], got {w}")


def _hash_bytes(hash: bytes) -> bytes:
    if not isinstance(hash, bytes | bytearray | memoryview):
        raise SortitionError(f"sortition hash must be bytes, got {type(hash).__name__}")
    data = bytes(hash)
    if len(data) != HASH_LEN:
        raise SortitionError(f"sortition hash must be {HASH_LEN} bytes, got {len(data)}")
    return data


def _alpha(seed: bytes, role: bytes) -> bytes:
    """Return the VRF input seed || role."""
    for name, value in (("seed", seed), ("role", role)):
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SortitionError(f"sortition {name} must be bytes, got {type(value).__name__}")
    return bytes(seed) + bytes(role)
