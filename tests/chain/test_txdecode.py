"""decode_raw_transaction's quick path for legacy and EIP-1559 transactions against py-evm's
own decoder: the same object for every valid encoding, and the same refusal otherwise."""

from __future__ import annotations

from unittest import mock

from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.chain import txdecode
from powerverse.chain.txdecode import _decode_common, decode_raw_transaction
from powerverse.chain.txpool_errors import TxPoolError

KEY = Account.from_key(b"\x07" * 32)

uints = st.one_of(st.integers(0, 2**64), st.integers(0, 2**256 - 1))


@st.composite
def signed(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["legacy", "1559", "2930"]))
    tx: dict[str, object] = {
        "nonce": draw(st.integers(0, 2**64 - 2)),
        "gas": draw(st.integers(21_000, 2**63)),
        "value": draw(uints),
        "chainId": draw(st.integers(1, 2**32)),
        "data": draw(st.binary(max_size=40)),
    }
    if draw(st.booleans()):
        tx["to"] = to_checksum_address(draw(st.binary(min_size=20, max_size=20)))
    if kind == "legacy":
        tx["gasPrice"] = draw(uints)
    else:
        if kind == "1559":
            tx["type"] = 2
            tx["maxFeePerGas"] = draw(uints)
            tx["maxPriorityFeePerGas"] = draw(uints)
        else:
            tx["type"] = 1
            tx["gasPrice"] = draw(uints)
        if draw(st.booleans()):
            tx["accessList"] = [{"address": "0x" + "ab" * 20, "storageKeys": ["0x" + "00" * 32]}]
    return bytes(KEY.sign_transaction(tx).raw_transaction)


def _reference(raw: bytes) -> object:
    """What decode_raw_transaction gave before the quick path: py-evm's decoder after ours
    checks, or the refusal."""
    with mock.patch.object(txdecode, "_decode_common", return_value=None):
        try:
            return txdecode.decode_raw_transaction(raw)
        except TxPoolError as exc:
            return (type(exc), str(exc))


def _outcome(tx: object, name: str) -> object:
    """The attribute (called, if a method), or the type of what reading it raised."""
    try:
        value = getattr(tx, name)
        return value() if callable(value) else value
    except Exception as exc:
        return type(exc)


def _same(raw: bytes) -> None:
    expected = _reference(raw)
    try:
        got: object = decode_raw_transaction(raw)
    except TxPoolError as exc:
        got = (type(exc), str(exc))
    if isinstance(expected, tuple):
        assert got == expected  # the same refusal, word for word
        return
    assert type(got) is type(expected)
    assert got == expected
    for field in ("encode", "hash", "sender", "nonce", "gas", "to", "value", "data", "chain_id"):
        assert _outcome(got, field) == _outcome(expected, field)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=signed())
def test_valid_transactions_decode_as_py_evm_decodes_them(raw: bytes) -> None:
    _same(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=signed(), at=st.integers(0, 10_000), byte=st.integers(0, 255), cut=st.booleans())
def test_damaged_transactions_are_refused_or_decoded_as_py_evm_does(
    raw: bytes, at: int, byte: int, cut: bool
) -> None:
    at %= len(raw)
    damaged = raw[:at] if cut else raw[:at] + bytes([byte]) + raw[at + 1 :]
    if not damaged:
        return
    _same(damaged)


def test_the_quick_path_is_taken_for_the_common_kinds() -> None:
    legacy = bytes(
        KEY.sign_transaction(
            {"nonce": 0, "gas": 21_000, "gasPrice": 1, "to": "0x" + "11" * 20, "value": 1}
        ).raw_transaction
    )
    dynamic = bytes(
        KEY.sign_transaction(
            {
                "type": 2,
                "nonce": 0,
                "gas": 21_000,
                "maxFeePerGas": 2,
                "maxPriorityFeePerGas": 1,
                "to": "0x" + "11" * 20,
                "value": 1,
                "chainId": 1,
            }
        ).raw_transaction
    )
    assert _decode_common(legacy) is not None
    assert _decode_common(dynamic) is not None
    # a non-canonical integer (a leading zero) is py-evm's to refuse
    assert _decode_common(dynamic + b"\x00") is None


def _py_evm_sender(raw: bytes) -> object:
    """The sender py-evm recovers from a freshly decoded copy, or the error's type."""
    try:
        return bytes(txdecode._BUILDER.decode(raw).sender)
    except Exception as exc:
        return type(exc)


def _ours(raw: bytes) -> object:
    try:
        return txdecode.sender_of(decode_raw_transaction(raw))
    except Exception as exc:
        return type(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=signed())
def test_sender_of_recovers_what_py_evm_recovers(raw: bytes) -> None:
    assert _ours(raw) == _py_evm_sender(raw) == bytes.fromhex(KEY.address[2:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=signed(), at=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_sender_of_a_damaged_transaction_is_py_evm_s(raw: bytes, at: int, byte: int) -> None:
    at %= len(raw)
    damaged = raw[:at] + bytes([byte]) + raw[at + 1 :]
    try:
        decode_raw_transaction(damaged)
    except TxPoolError:
        return  # refused before any sender is asked for
    assert _ours(damaged) == _py_evm_sender(damaged)


def test_the_sender_is_cached_on_the_transaction() -> None:
    raw = bytes(
        KEY.sign_transaction(
            {
                "nonce": 0,
                "gas": 21_000,
                "gasPrice": 1,
                "to": "0x" + "11" * 20,
                "value": 1,
                "chainId": 5,
            }
        ).raw_transaction
    )
    tx = decode_raw_transaction(raw)
    assert txdecode._signing_message(tx) is not None  # the quick path applies
    sender = txdecode.sender_of(tx)
    assert tx.sender == sender == bytes.fromhex(KEY.address[2:])


# Fields as they come out of the RLP decoder: byte strings (some with a leading zero, some of
# an address's length or near it) and lists (empty, of atoms, nested), in and out of place.
_atoms = st.one_of(
    st.binary(max_size=3),
    st.binary(min_size=19, max_size=21),
    st.builds(lambda b: b"\x00" + b, st.binary(max_size=2)),
    st.binary(max_size=40),
)
_items = st.recursive(_atoms, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@st.composite
def field_lists(draw: st.DrawFn) -> tuple[type, list[object]]:
    """A transaction kind and a decoded item, mostly of its plain shape, with mutations."""
    cls = draw(st.sampled_from(sorted(txdecode._SHAPES, key=lambda c: c.__name__)))
    shape = txdecode._SHAPES[cls]
    fields: list[object] = []
    for i in range(shape.size):
        if i == shape.access_list:
            fields.append(draw(st.one_of(st.just([]), _items)))
        elif i == shape.to:
            fields.append(
                draw(st.one_of(st.binary(min_size=20, max_size=20), st.just(b""), _items))
            )
        else:
            fields.append(
                draw(st.one_of(st.binary(max_size=4).filter(lambda b: b[:1] != b"\0"), _items))
            )
    cut = draw(st.integers(0, 2))
    if cut == 1 and fields:
        fields.pop(draw(st.integers(0, len(fields) - 1)))
    elif cut == 2:
        fields.append(draw(_items))
    return cls, fields


def _sedes_outcome(cls: type, item: object) -> object:
    try:
        return tuple(cls._meta.sedes.deserialize(item))  # type: ignore[attr-defined]
    except Exception as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(case=field_lists())
def test_plain_fields_are_what_the_sedes_make_of_them(case: tuple[type, list[object]]) -> None:
    """Whatever `_plain_fields` takes, the kind's rlp sedes deserialize to the same values;
    what it leaves (None) goes to the sedes, which may take or refuse it."""
    cls, item = case
    fields = txdecode._plain_fields(item, txdecode._SHAPES[cls])
    if fields is not None:
        assert fields == _sedes_outcome(cls, item)
        assert cls(*fields) == cls(*cls._meta.sedes.deserialize(item))  # type: ignore[attr-defined]


def test_plain_fields_leave_the_unusual_to_the_sedes() -> None:
    shape = txdecode._SHAPES[txdecode.DynamicFeeTransaction]
    good: list[object] = [b"\x01", b"", b"\x01", b"\x02", b"R\x08", b"\x11" * 20, b"\x01", b"",
                          [], b"", b"\x05", b"\x06"]  # fmt: skip
    assert txdecode._plain_fields(good, shape) == (1, 0, 1, 2, 21_000, b"\x11" * 20, 1, b"",
                                                   (), 0, 5, 6)  # fmt: skip
    for at, bad in ((1, b"\x00\x01"), (5, b"\x11" * 19), (8, [[b"\x11" * 20, []]]), (8, b""),
                    (0, [b"\x01"])):  # fmt: skip
        mutated = [*good]
        mutated[at] = bad
        assert txdecode._plain_fields(mutated, shape) is None, (at, bad)
    assert txdecode._plain_fields(good[:-1], shape) is None
    assert txdecode._plain_fields(tuple(good), shape) is None
