"""The SDK's ChainClient against a real dev node: signing, sending, and decoding refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from powerverse.market.client import ChainClient, decode_revert
from powerverse.market.exceptions import ContractError, MarketError
from tests.rpc.conftest import ThreadedNode

ARTIFACT = json.loads(
    (Path(__file__).parents[1] / "contracts" / "artifacts" / "CustomErrors.json").read_text()
)
ABIS = {"CustomErrors": ARTIFACT["abi"]}


@pytest.fixture(scope="module")
def me(dev_node: ThreadedNode, dev_signers: list[LocalAccount]) -> ChainClient:
    return ChainClient(dev_node.url, dev_signers[3], abis=ABIS)


@pytest.fixture(scope="module")
def errors(me: ChainClient):  # type: ignore[no-untyped-def]
    return me.deploy("CustomErrors", bytes.fromhex(ARTIFACT["bytecode"][2:]))


def test_transact_and_call(me: ChainClient, errors) -> None:  # type: ignore[no-untyped-def]
    receipt = me.transact(errors.functions.setValue(42))
    assert receipt["status"] == 1
    assert me.call(errors.functions.value()) == 42
    (event,) = me.events(errors, "ValueChanged", receipt)
    assert event["newValue"] == 42
    assert event["by"] == me.address


def test_custom_error_is_decoded_with_names(me: ChainClient, errors) -> None:  # type: ignore[no-untyped-def]
    me.transact(errors.functions.deposit(5))
    with pytest.raises(ContractError) as info:
        me.transact(errors.functions.withdraw(9))
    assert info.value.name == "InsufficientBalance"
    assert info.value.contract == "CustomErrors"
    assert info.value.args_by_name == {"account": me.address, "have": 5, "want": 9}
    assert me.call(errors.functions.balanceOf(me.address)) == 5  # nothing lost


def test_failure_at_execution_is_explained(me: ChainClient, errors) -> None:  # type: ignore[no-untyped-def]
    # An explicit gas limit skips estimation: the transaction is mined and fails on chain.
    nonce = me.w3.eth.get_transaction_count(me.address)
    with pytest.raises(ContractError) as info:
        me.transact(errors.functions.withdraw(10**20), gas=100_000)
    assert info.value.name == "InsufficientBalance"
    assert me.w3.eth.get_transaction_count(me.address) == nonce + 1
    # and the client's nonce tracking still works afterwards
    assert me.transact(errors.functions.setValue(7))["status"] == 1


def test_reason_strings_panics_and_empty_errors(me: ChainClient, errors) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ContractError) as info:
        me.call(errors.functions.requireOk(False))
    assert (info.value.name, info.value.message) == ("Error", "CustomErrors: not ok")
    with pytest.raises(ContractError) as info:
        me.call(errors.functions.divide(1, 0))
    assert info.value.name == "Panic"
    assert info.value.args_by_name == {"code": 0x12}
    with pytest.raises(ContractError) as info:
        me.call(errors.functions.empty())
    assert info.value.name == "Empty"


def test_unknown_and_empty_revert_data() -> None:
    assert decode_revert(b"").name == "Reverted"
    unknown = decode_revert(bytes.fromhex("deadbeef") + b"\x00" * 32)
    assert unknown.name == "Unknown"
    assert "deadbeef" in unknown.message


def test_plain_transfer(me: ChainClient, dev_signers: list[LocalAccount]) -> None:
    other = dev_signers[4].address
    before = me.balance(other)
    me.send_value(other, 12345)
    assert me.balance(other) == before + 12345


def test_refusals_without_an_account_or_abi(dev_node: ThreadedNode, errors) -> None:  # type: ignore[no-untyped-def]
    reader = ChainClient(dev_node.url, abis=ABIS)
    assert reader.call(errors.functions.value()) >= 0  # reading needs no account
    with pytest.raises(MarketError, match="no account"):
        reader.transact(errors.functions.setValue(1))
    with pytest.raises(MarketError, match="not a system contract"):
        reader.contract("Nope")
    with pytest.raises(MarketError, match="pass its address"):
        reader.contract("CustomErrors")
    with pytest.raises(MarketError, match="no ABI"):
        reader.deploy("Nope", b"")


def test_errors_decode_with_the_called_contracts_own_fields(client) -> None:  # type: ignore[no-untyped-def]
    # Market and Orders both define NotProvider/NotParty with different argument names; a
    # refusal from Market must come back with Market's names.
    from powerverse.market.client import _own_errors

    market = client(0).contract("Market")
    fn = market.functions.withdraw()
    own = _own_errors(fn)
    assert own, "Market defines custom errors"
    assert {e.contract for e in own.values()} == {"Market"}
    static = {
        s: e
        for s, e in own.items()
        if not any(t in ("string", "bytes") or "[" in t for t in e.types)
    }
    assert static
    for selector, err in static.items():
        decoded = decode_revert(selector + b"\x00" * 32 * len(err.types), None, own)
        assert decoded.name == err.name
        assert decoded.contract == "Market"
