"""receipt_payload against py-evm's own receipt encoding, legacy and typed, with and without
logs."""

from __future__ import annotations

from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.prague.receipts import PragueReceiptBuilder
from hypothesis import given
from hypothesis import strategies as st

from powerverse.chain.blockrun import receipt_payload

logs = st.lists(
    st.builds(
        Log,
        st.binary(min_size=20, max_size=20),
        st.lists(st.integers(0, 2**256 - 1), max_size=4),
        st.binary(max_size=40),
    ),
    max_size=2,
)


@given(
    status=st.sampled_from([b"", b"\x01", b"\x11" * 32]),
    gas_used=st.integers(0, 2**64),
    entries=logs,
    type_id=st.sampled_from([None, 1, 2, 4]),
)
def test_same_bytes_as_py_evm(
    status: bytes, gas_used: int, entries: list[Log], type_id: int | None
) -> None:
    receipt = Receipt(state_root=status, gas_used=gas_used, logs=entries)
    if type_id is not None:
        receipt = PragueReceiptBuilder.typed_receipt_class(type_id, receipt)
    assert receipt_payload(receipt) == receipt.encode()
