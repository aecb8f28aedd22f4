"""Fuzz every node method with hostile parameters: the node answers each with a proper error.

An "internal error" (-32603) means an exception escaped a handler unclassified, so it fails
the test; so does a crashed or unresponsive node.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.rpc.eth import EthApi
from tests.rpc.conftest import ThreadedNode

ALLOWED_CODES = {-32700, -32600, -32601, -32602, -32000, -32001, -32005, 3}

METHODS = sorted(
    name
    for name in dir(EthApi)
    if name.startswith(("web3_", "net_", "eth_", "txpool_", "evm_", "pv_"))
)

hexish = st.one_of(
    st.just("0x"),
    st.just("latest"),
    st.just("pending"),
    st.just("earliest"),
    st.text(alphabet="0123456789abcdefxXg", max_size=70).map(lambda s: "0x" + s),
    st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
    st.integers(min_value=-(2**70), max_value=2**300).map(hex),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    hexish,
)
call_objects = st.fixed_dictionaries(
    {},
    optional={
        "from": hexish,
        "to": hexish,
        "gas": hexish,
        "gasPrice": hexish,
        "value": hexish,
        "data": hexish,
        "input": hexish,
        "maxFeePerGas": hexish,
    },
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "fromBlock": hexish,
        "toBlock": hexish,
        "address": st.one_of(hexish, st.lists(hexish, max_size=3)),
        "topics": st.lists(st.one_of(st.none(), hexish, st.lists(hexish, max_size=2)), max_size=5),
        "blockHash": hexish,
    },
)
values = st.recursive(
    st.one_of(scalars, call_objects, filters),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
params = st.one_of(st.lists(values, max_size=4), st.dictionaries(st.text(max_size=5), values))


@settings(
    max_examples=int(os.environ.get("PV_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(method=st.sampled_from(METHODS), args=params)
def test_no_method_leaks_an_internal_error(
    shared_dev_node: ThreadedNode, method: str, args: Any
) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": args}
    response = shared_dev_node.client.post(shared_dev_node.url, json=body)
    assert response.status_code == 200
    doc = response.json()
    assert doc["id"] == 7
    if "error" in doc:
        assert doc["error"]["code"] in ALLOWED_CODES, (method, args, doc["error"])
        assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    else:
        assert "result" in doc


def test_node_still_answers_after_fuzzing(shared_dev_node: ThreadedNode) -> None:
    assert shared_dev_node.result("eth_chainId") == "0x7a69"
