"""Credentials encrypted to a renter's key: only that key opens them, the documented format is the
one produced, and DID documents yield their keyAgreement secp256k1 key."""

from __future__ import annotations

import hashlib
import hmac
import json

import ecies
import pytest
from coincurve import PrivateKey as CurveKey
from coincurve import PublicKey as Point
from Crypto.Cipher import AES
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.infra import credentials as creds_module
from powerverse.infra.auth import MemoryNonceStore, sign_request, verify_request
from powerverse.infra.credentials import (
    DID_KEY_TYPE,
    compress_public_key,
    decrypt_credentials,
    did_encryption_key,
    encrypt_credentials,
)
from powerverse.infra.exceptions import AuthError
from powerverse.market.did import ASSERTION_METHOD, AUTHENTICATION, KEY_AGREEMENT, PublicKey

RENTER: LocalAccount = Account.from_key(b"\x05" * 32)
STRANGER: LocalAccount = Account.from_key(b"\x06" * 32)
SECRET = {"ssh": {"host": "203.0.113.7", "port": 2222, "user": "root"}, "password": "pw-ü"}
DID = f"did:pv:{RENTER.address}"
NOW = 1_800_000_000


def renter_public_key() -> bytes:
    """The renter's key as the agent learns it: recovered from a signed request."""
    headers = sign_request(
        RENTER, chain_id=1, agent="0x" + "ab" * 20, method="GET", path="/v1/x", timestamp=NOW
    )
    who = verify_request(
        headers,
        chain_id=1,
        agent="0x" + "ab" * 20,
        method="GET",
        path="/v1/x",
        body=b"",
        nonces=MemoryNonceStore(lambda: NOW),
        clock=lambda: NOW,
    )
    return who.public_key


def test_only_the_renters_key_opens_them() -> None:
    box = encrypt_credentials(renter_public_key(), SECRET)
    assert decrypt_credentials(bytes(RENTER.key), box) == SECRET
    with pytest.raises(AuthError, match="not encrypted to this key"):
        decrypt_credentials(bytes(STRANGER.key), box)


def test_every_key_form_encrypts_to_the_same_recipient() -> None:
    raw = renter_public_key()
    for form in (raw, b"\x04" + raw, compress_public_key(raw)):
        assert decrypt_credentials(bytes(RENTER.key), encrypt_credentials(form, SECRET)) == SECRET


def test_encryption_is_fresh_each_time() -> None:
    key = renter_public_key()
    assert encrypt_credentials(key, SECRET) != encrypt_credentials(key, SECRET)


@pytest.mark.parametrize("position", [0, 1, 40, 70, 90, 100, -1])
def test_altered_ciphertexts_are_refused(position: int) -> None:
    blob = bytearray.fromhex(encrypt_credentials(renter_public_key(), SECRET)[2:])
    blob[position] ^= 0x01
    with pytest.raises(AuthError):
        decrypt_credentials(bytes(RENTER.key), "0x" + blob.hex())


@pytest.mark.parametrize(
    ("ciphertext", "why"),
    [("0xnothex", "not 0x-hex"), ("0x" + "04" * 90, "too short"), ("", "too short")],
)
def test_malformed_ciphertexts_are_refused(ciphertext: str, why: str) -> None:
    with pytest.raises(AuthError, match=why):
        decrypt_credentials(bytes(RENTER.key), ciphertext)


def test_non_json_or_non_object_plaintexts_are_refused() -> None:
    key = compress_public_key(renter_public_key())
    for plain, why in ((b"\xff not json", "not JSON"), (b"[1, 2]", "not a JSON object")):
        box = "0x" + ecies.encrypt(key, plain).hex()
        with pytest.raises(AuthError, match=why):
            decrypt_credentials(bytes(RENTER.key), box)


def test_bad_keys_are_refused() -> None:
    with pytest.raises(AuthError, match="not a secp256k1 public key"):
        encrypt_credentials(b"\x02" + b"\xff" * 32, SECRET)  # x beyond the field: no point
    with pytest.raises(AuthError, match="not a secp256k1 public key"):
        encrypt_credentials(b"\x01" * 20, SECRET)
    with pytest.raises(AuthError, match="32 bytes"):
        decrypt_credentials(b"\x05" * 31, encrypt_credentials(renter_public_key(), SECRET))


def _hkdf_sha256(master: bytes, length: int = 32) -> bytes:
    prk = hmac.new(b"\x00" * 32, master, hashlib.sha256).digest()  # RFC 5869, empty salt
    return hmac.new(prk, b"\x01", hashlib.sha256).digest()[:length]  # empty info, one block


def test_the_documented_format_decrypts_by_hand() -> None:
    """An independent decryption following only the module docstring (what a JS client does)."""
    assert "HKDF-SHA256" in (creds_module.__doc__ or "")
    blob = bytes.fromhex(encrypt_credentials(renter_public_key(), SECRET)[2:])
    ephemeral, nonce, tag, body = blob[:65], blob[65:81], blob[81:97], blob[97:]
    assert ephemeral[0] == 4
    secret = CurveKey(bytes(RENTER.key))
    shared_point = Point(ephemeral).multiply(secret.secret).format(compressed=False)
    key = _hkdf_sha256(ephemeral + shared_point)
    plain = AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(body, tag)
    assert json.loads(plain) == SECRET


def _did_key(
    key_id: str, point: bytes, purposes: int = KEY_AGREEMENT, valid_to: int = 0
) -> PublicKey:
    return PublicKey(key_id, DID_KEY_TYPE, point, purposes, valid_to)


def test_a_did_keyagreement_key_is_found_and_opens_the_credentials() -> None:
    did_secret = CurveKey(b"\x09" * 32)
    point = did_secret.public_key.format(compressed=True)
    keys = [
        PublicKey("ssh", "ssh-ed25519", b"\x00" * 51, AUTHENTICATION),
        _did_key("signing", point, ASSERTION_METHOD),  # right type, wrong purpose
        _did_key("old", CurveKey(b"\x08" * 32).public_key.format(), KEY_AGREEMENT, NOW - 1),
        _did_key("broken", b"\x02" + b"\xff" * 32),  # not a point
        _did_key("enc", point, KEY_AGREEMENT | AUTHENTICATION, NOW + 3600),
        _did_key("later", CurveKey(b"\x07" * 32).public_key.format()),
    ]
    found = did_encryption_key(keys, did=DID, now=NOW)
    assert found is not None
    assert (found.key_id, found.source, found.public_key) == (f"{DID}#enc", "did", point)
    box = encrypt_credentials(found.public_key, SECRET)
    assert decrypt_credentials(did_secret.secret, box) == SECRET
    with pytest.raises(AuthError):
        decrypt_credentials(bytes(RENTER.key), box)


def test_no_usable_did_key_is_none() -> None:
    point = CurveKey(b"\x09" * 32).public_key.format()
    assert did_encryption_key([], did=DID, now=NOW) is None
    assert did_encryption_key([_did_key("x", point, valid_to=NOW)], did=DID, now=NOW) is None
    assert did_encryption_key([_did_key("x", point, AUTHENTICATION)], did=DID, now=NOW) is None
    uncompressed = CurveKey(b"\x09" * 32).public_key.format(compressed=False)
    assert did_encryption_key([_did_key("x", uncompressed)], did=DID, now=NOW) is None
