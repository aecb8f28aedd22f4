"""Unit tests of the bench helpers that need no node: RPC client, splitting, ABI, reports."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from bench._accounts import derive_senders
from bench._load import CallResult, LoadResult, _percentile, split
from bench._report import NodeReport, render_table, to_json
from bench._rpc import RpcClient
from bench._tx import Fees, constructor_args, recipient, sign, transfer_data
from bench.exceptions import NodeUnreachable, RpcError
from eth_account import Account

from bench import tps


def _client(handler: Any) -> RpcClient:
    return RpcClient("http://node.test", transport=httpx.MockTransport(handler))


def test_batch_keeps_call_order_and_returns_errors_in_place() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        replies = [
            {"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32000, "message": "nonce too low"}}
            if r["params"] == ["bad"]
            else {"jsonrpc": "2.0", "id": r["id"], "result": r["params"][0]}
            for r in body
        ]
        return httpx.Response(200, json=list(reversed(replies)))

    with _client(handler) as rpc:
        out = rpc.batch([("m", ["a"]), ("m", ["bad"]), ("m", ["c"])])
        assert out[0] == "a" and out[2] == "c"
        assert isinstance(out[1], RpcError) and out[1].code == -32000
        with pytest.raises(RpcError, match="nonce too low"):
            rpc.batch_ok([("m", ["bad"])])
        assert rpc.batch([]) == []


def test_call_raises_on_error_and_malformed_replies() -> None:
    replies: list[Any] = [
        {"jsonrpc": "2.0", "id": 1, "error": {"code": 3, "message": "execution reverted"}},
        {"jsonrpc": "2.0", "id": 2},
        [1, 2],
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=replies.pop(0))

    with _client(handler) as rpc:
        with pytest.raises(RpcError, match="execution reverted"):
            rpc.call("eth_call")
        with pytest.raises(RpcError, match="neither result nor error"):
            rpc.call("eth_chainId")
        with pytest.raises(RpcError, match="malformed"):
            rpc.call("eth_chainId")


def test_non_json_answer_is_an_rpc_error() -> None:
    bad_gateway = _client(lambda request: httpx.Response(502, text="bad gateway"))
    with bad_gateway as rpc, pytest.raises(RpcError, match="non-JSON"):
        rpc.call("eth_chainId")


def test_unreachable_node_is_reported_with_its_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with _client(handler) as rpc, pytest.raises(NodeUnreachable, match=r"http://node\.test"):
        rpc.call("eth_chainId")


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [(10, 3, [4, 3, 3]), (2, 4, [1, 1, 0, 0]), (0, 2, [0, 0]), (6, 1, [6])],
)
def test_split_spreads_evenly(total: int, parts: int, expected: list[int]) -> None:
    assert split(total, parts) == expected


@pytest.mark.parametrize(("total", "parts"), [(5, 0), (-1, 2)])
def test_split_rejects_bad_input(total: int, parts: int) -> None:
    with pytest.raises(ValueError):
        split(total, parts)


def test_percentile_is_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert _percentile(samples, 50) == 50.0
    assert _percentile(samples, 99) == 99.0
    assert _percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        _percentile([], 50)


def test_dev_accounts_match_the_hardhat_mnemonic() -> None:
    senders = derive_senders(21)
    assert senders[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert senders[19].address == "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199"
    assert senders[19].is_dev and not senders[20].is_dev
    with pytest.raises(ValueError):
        derive_senders(0)


def test_signed_tx_recovers_to_sender_and_is_memoised() -> None:
    sender = derive_senders(1)[0]
    fees = Fees(max_fee=100 * 10**9, tip=10**9)
    to = recipient(3).lower()  # any case is accepted
    kwargs: dict[str, Any] = {"chain_id": 31337, "nonce": 5, "to": to, "value": 1, "gas": 21000}
    tx = sign(sender, fees=fees, **kwargs)
    assert Account.recover_transaction(tx.raw) == sender.address
    assert tx.raw.startswith("0x02") and tx.nonce == 5 and len(tx.hash) == 66
    assert sign(sender, fees=fees, **kwargs) is tx


def test_recipients_are_deterministic_and_distinct() -> None:
    assert recipient(1) == recipient(1)
    assert len({recipient(i) for i in range(100)}) == 100


def test_abi_encoding_of_transfer_and_constructor() -> None:
    data = transfer_data(recipient(0), 5)
    assert data[:4].hex() == "a9059cbb" and len(data) == 68 and data[-1] == 5
    abi = [{"type": "constructor", "inputs": [{"name": "initialSupply", "type": "uint256"}]}]
    assert int.from_bytes(constructor_args(abi, recipient(0)), "big") > 0
    assert constructor_args([], recipient(0)) == b""
    with pytest.raises(ValueError):
        constructor_args([{"type": "constructor", "inputs": [{"type": "uint256[]"}]}], "0x")


def _report(name: str, tps_factor: float) -> NodeReport:
    return NodeReport(
        name,
        url="http://x",
        client_version="c",
        transfers=LoadResult("transfers", 100, 100, 0, 2.0 / tps_factor, 1.0, 5),
        calls=CallResult(10, 1.0, 1.0, 2.0, 1.5, 3.0),
    )


def test_json_report_has_figures_and_ratios() -> None:
    doc = to_json([_report("ours", 2.0), _report("hardhat", 1.0)], {"count": 100}, "cmd", {})
    ours = doc["nodes"]["ours"]["transfers"]
    assert ours["tps"] == pytest.approx(100.0) and ours["included"] == 100
    assert doc["ratios"]["ours/hardhat"]["transfers.tps"] == pytest.approx(2.0)
    assert doc["ratios"]["ours/hardhat"]["memory.tps"] is None
    assert doc["nodes"]["hardhat"]["erc20"] is None
    json.dumps(doc)


def test_table_shows_only_measured_rows() -> None:
    table = render_table([_report("ours", 2.0), _report("hardhat", 1.0)])
    labels = list(table.columns[0].cells)
    assert "transfers end-to-end" in labels and "memory run: RSS after" not in labels
    ratios = list(table.columns[3].cells)
    assert ratios[labels.index("transfers end-to-end")] == "2.00×"


def test_cli_needs_a_url_or_compare_mode() -> None:
    with pytest.raises(SystemExit) as exc:
        tps.parse_args([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        tps.parse_args(["http://x", "--count", "-1"])
    with pytest.raises(SystemExit):
        tps.parse_args(["--compare-hardhat", "--pid", "5"])


def test_cli_reports_an_unreachable_node(capsys: pytest.CaptureFixture[str]) -> None:
    code = tps.main(["http://127.0.0.1:9", "--count", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert "cannot reach node" in doc["nodes"]["node"]["error"]
