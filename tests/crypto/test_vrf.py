"""ECVRF-EDWARDS25519-SHA512-TAI against RFC 9381 Appendix B.3 and against bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.crypto import vrf
from powerverse.crypto.exceptions import CryptoError, InvalidKey
from powerverse.crypto.vrf import InvalidProof

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493

# RFC 9381 Appendix B.3, examples 16, 17 and 18: (SK, PK, alpha, pi, beta).
RFC9381_VECTORS = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f"
        "26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab12"
        "68a1b0db10836d9826a528ca76567805",
        "90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff"
        "66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae",
        id="example-16",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed593"
        "3bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926d"
        "a3ef39226bbc355bdc9850112c8f4b02",
        "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb"
        "5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031",
        id="example-17",
    ),
    pytest.param(
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf80"
        "96bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a"
        "2d41b00b05081ed0f58ee5e31b3a970e",
        "645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c45"
        "2118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f",
        id="example-18",
    ),
]


def encode(y: int, sign: int = 0) -> bytes:
    """Encode a y coordinate (not reduced) and an x sign bit as RFC 8032 does."""
    return (y | (sign << 255)).to_bytes(32, "little")


Y8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)

# The eight points of order 1, 2, 4 and 8, canonically encoded.
SMALL_ORDER = [
    encode(1),  # identity
    encode(P - 1),  # (0, -1), order 2
    encode(0, 0),  # (+-sqrt(-1), 0), order 4
    encode(0, 1),
    encode(Y8, 0),  # order 8
    encode(Y8, 1),
    encode(P - Y8, 0),
    encode(P - Y8, 1),
]

# Encodings libsodium would decode leniently: x = 0 with the sign bit set, or y >= p.
NON_CANONICAL = [
    encode(1, 1),
    encode(P - 1, 1),
    encode(P, 0),
    encode(P, 1),
    encode(P + 1, 0),
    encode(P + 1, 1),
    encode(P + 3, 0),  # y = 3 is on the curve and not of small order
    encode(2**255 - 1, 0),
]

SEED = bytes(range(32))


@pytest.fixture(scope="module")
def honest() -> tuple[bytes, bytes, bytes, bytes]:
    """A key pair, an input and its proof."""
    sk, pk = vrf.keypair(SEED)
    alpha = b"round 7 step 2"
    return sk, pk, alpha, vrf.prove(sk, alpha)


@pytest.mark.parametrize(("sk", "pk", "alpha", "pi", "beta"), RFC9381_VECTORS)
def test_rfc9381_vectors(sk: str, pk: str, alpha: str, pi: str, beta: str) -> None:
    secret, public = vrf.keypair(bytes.fromhex(sk))
    assert secret == bytes.fromhex(sk)
    assert public == bytes.fromhex(pk)
    proof = vrf.prove(secret, bytes.fromhex(alpha))
    assert proof == bytes.fromhex(pi)
    assert vrf.proof_to_hash(proof) == bytes.fromhex(beta)
    assert vrf.verify(public, proof, bytes.fromhex(alpha)) == bytes.fromhex(beta)


def test_module_exports_exactly_the_api() -> None:
    assert sorted(vrf.__all__) == ["keypair", "proof_to_hash", "prove", "verify"]
    assert vrf.InvalidProof is InvalidProof
    assert issubclass(InvalidProof, CryptoError)


@settings(max_examples=30, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), alpha=st.binary(max_size=100))
def test_roundtrip(seed: bytes, alpha: bytes) -> None:
    sk, pk = vrf.keypair(seed)
    pi = vrf.prove(sk, alpha)
    assert len(pi) == 80
    beta = vrf.verify(pk, pi, alpha)
    assert len(beta) == 64
    assert beta == vrf.proof_to_hash(pi)
    assert vrf.prove(sk, alpha) == pi  # deterministic


@settings(max_examples=20, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), a=st.binary(max_size=20), b=st.binary(max_size=20))
def test_distinct_inputs_give_distinct_outputs(seed: bytes, a: bytes, b: bytes) -> None:
    sk, _ = vrf.keypair(seed)
    betas = {vrf.proof_to_hash(vrf.prove(sk, a)), vrf.proof_to_hash(vrf.prove(sk, b))}
    assert len(betas) == (1 if a == b else 2)


def test_keys_have_the_right_lengths() -> None:
    for bad in (b"", bytes(31), bytes(33), 32, "k" * 32):
        with pytest.raises(InvalidKey):
            vrf.keypair(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidKey):
            vrf.prove(bad, b"x")  # type: ignore[arg-type]
    # bytes-like seeds are fine
    assert vrf.keypair(bytearray(SEED)) == vrf.keypair(memoryview(SEED))


def test_every_single_byte_change_of_pi_is_rejected(honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    for i in range(len(pi)):
        for bit in (0x01, 0x80):
            tampered = bytearray(pi)
            tampered[i] ^= bit
            with pytest.raises(InvalidProof):
                vrf.verify(pk, bytes(tampered), alpha)


def test_other_alpha_is_rejected(honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    for other in (b"", alpha + b"\x00", alpha[:-1], b"round 7 step 3"):
        with pytest.raises(InvalidProof):
            vrf.verify(pk, pi, other)


def test_other_public_key_is_rejected(honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    _, other = vrf.keypair(bytes(32))
    with pytest.raises(InvalidProof):
        vrf.verify(other, pi, alpha)
    flipped = bytearray(pk)
    flipped[0] ^= 1
    with pytest.raises(InvalidProof):
        vrf.verify(bytes(flipped), pi, alpha)


def test_wrong_lengths_are_rejected(honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    for bad_pi in (b"", pi[:79], pi + b"\x00"):
        with pytest.raises(InvalidProof, match="80 bytes"):
            vrf.verify(pk, bad_pi, alpha)
        with pytest.raises(InvalidProof, match="80 bytes"):
            vrf.proof_to_hash(bad_pi)
    for bad_pk in (b"", pk[:31], pk + b"\x00"):
        with pytest.raises(InvalidProof, match="32 bytes"):
            vrf.verify(bad_pk, pi, alpha)


@pytest.mark.parametrize("point", SMALL_ORDER, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_small_order_public_keys_are_rejected(point: bytes, honest: tuple[bytes, ...]) -> None:
    _, _, alpha, pi = honest
    with pytest.raises(InvalidProof, match="small order"):
        vrf.verify(point, pi, alpha)


@pytest.mark.parametrize("point", NON_CANONICAL, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_non_canonical_public_keys_are_rejected(point: bytes, honest: tuple[bytes, ...]) -> None:
    _, _, alpha, pi = honest
    with pytest.raises(InvalidProof, match="canonical"):
        vrf.verify(point, pi, alpha)


@pytest.mark.parametrize("point", NON_CANONICAL, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_non_canonical_gamma_is_rejected(point: bytes, honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    forged = point + pi[32:]
    with pytest.raises(InvalidProof, match="Gamma"):
        vrf.verify(pk, forged, alpha)
    with pytest.raises(InvalidProof, match="Gamma"):
        vrf.proof_to_hash(forged)


def test_gamma_not_on_the_curve_is_rejected(honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    off_curve = encode(2)  # y = 2 has no x on edwards25519
    with pytest.raises(InvalidProof, match="Gamma"):
        vrf.verify(pk, off_curve + pi[32:], alpha)


@pytest.mark.parametrize("point", SMALL_ORDER, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_small_order_gamma_is_rejected(point: bytes, honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    with pytest.raises(InvalidProof):
        vrf.verify(pk, point + pi[32:], alpha)


@pytest.mark.parametrize("s", [L, L + 1, 2**253, 2**256 - 1])
def test_unreduced_s_is_rejected(s: int, honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    forged = pi[:48] + s.to_bytes(32, "little")
    with pytest.raises(InvalidProof, match="s is not reduced"):
        vrf.verify(pk, forged, alpha)
    with pytest.raises(InvalidProof, match="s is not reduced"):
        vrf.proof_to_hash(forged)


def test_s_plus_l_alias_of_a_valid_proof_is_rejected(honest: tuple[bytes, ...]) -> None:
    _, pk, alpha, pi = honest
    s = int.from_bytes(pi[48:], "little")
    with pytest.raises(InvalidProof, match="s is not reduced"):
        vrf.verify(pk, pi[:48] + (s + L).to_bytes(32, "little"), alpha)


def test_torsion_in_gamma_or_key_is_rejected(honest: tuple[bytes, ...]) -> None:
    """Stricter than RFC 9381: mixed-order Gamma and keys fail, though beta would not change."""
    from nacl.bindings import crypto_core_ed25519_add

    _, pk, alpha, pi = honest
    order8 = encode(Y8)
    mixed_gamma = crypto_core_ed25519_add(pi[:32], order8) + pi[32:]
    assert vrf.proof_to_hash(mixed_gamma) == vrf.proof_to_hash(pi)
    with pytest.raises(InvalidProof, match="prime-order subgroup"):
        vrf.verify(pk, mixed_gamma, alpha)
    with pytest.raises(InvalidProof, match="prime-order subgroup"):
        vrf.verify(crypto_core_ed25519_add(pk, order8), pi, alpha)
