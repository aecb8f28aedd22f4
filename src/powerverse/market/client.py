"""The SDK's connection to a PowerVerse node: system contracts, signed transactions, errors.

Every domain module of the SDK (staking, resources, rentals, orders, reviews, DIDs, admin) is a
thin typed layer over :class:`ChainClient`::

    client = ChainClient("http://127.0.0.1:8545", account=Account.from_key(key))
    nft = client.contract("ResourceNFT")
    receipt = client.transact(nft.functions.register(...))

Transactions are signed locally (the node holds no keys) and sent raw; a refusal comes back as
:class:`ContractError` carrying the custom error's name and arguments, decoded with the ABIs of
every system contract.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from requests import exceptions as http_errors
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.logs import DISCARD
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import BlockIdentifier, TxParams

from powerverse.contracts.addresses import SYSTEM_ADDRESSES
from powerverse.contracts.artifacts import artifact_names, load_artifact
from powerverse.market.exceptions import ContractError, MarketError, TransactionFailed

__all__ = [
    "ChainClient",
    "ContractError",
    "MarketError",
    "TransactionFailed",
    "decode_revert",
    "error_index",
]

GWEI = 10**9
ERROR_STRING = keccak(text="Error(string)")[:4]
PANIC = keccak(text="Panic(uint256)")[:4]


@dataclass(frozen=True)
class _ErrorAbi:
    contract: str
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]


def _abi_type(item: Mapping[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def error_index(abis: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[bytes, _ErrorAbi]:
    """Selector -> custom error, over the given contracts' ABIs."""
    index: dict[bytes, _ErrorAbi] = {}
    for contract, abi in abis.items():
        for item in abi:
            if item.get("type") != "error":
                continue
            types = tuple(_abi_type(i) for i in item.get("inputs", []))
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            index.setdefault(
                selector,
                _ErrorAbi(
                    contract,
                    str(item["name"]),
                    tuple(str(i.get("name", "")) for i in item.get("inputs", [])),
                    types,
                ),
            )
    return index


@cache
def _system_errors() -> dict[bytes, _ErrorAbi]:
    return error_index({name: load_artifact(name).abi for name in artifact_names()})


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def decode_revert(
    data: bytes,
    extra: Mapping[bytes, _ErrorAbi] | None = None,
    preferred: Mapping[bytes, _ErrorAbi] | None = None,
) -> ContractError:
    """The ContractError that revert `data` encodes (custom error, Error(string) or Panic).

    Custom errors are looked up in `preferred` (the called contract's ABI: several contracts
    share error names with different fields), then the system contracts' ABIs, then `extra`.
    """
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_STRING:
            (reason,) = abi_decode(["string"], body)
            return ContractError("Error", {"reason": reason}, data, message=reason)
        if selector == PANIC:
            (code,) = abi_decode(["uint256"], body)
            return ContractError("Panic", {"code": code}, data, message=f"panic 0x{code:02x}")
        known = (
            (preferred or {}).get(selector)
            or _system_errors().get(selector)
            or (extra or {}).get(selector)
        )
        if known is not None:
            values = abi_decode(list(known.types), body)
            args = {
                (n or f"arg{i}"): to_checksum_address(v) if t == "address" else _plain(v)
                for i, (n, t, v) in enumerate(zip(known.names, known.types, values, strict=True))
            }
            return ContractError(known.name, args, data, contract=known.contract)
    except DecodingError:
        pass
    if not data:
        return ContractError("Reverted", {}, data, message="reverted without a reason")
    return ContractError("Unknown", {}, data, message=f"unknown revert data 0x{data.hex()}")


_SYSTEM_NAMES: dict[str, str] = {to_checksum_address(a): n for n, a in SYSTEM_ADDRESSES.items()}


def _own_errors(
    fn: ContractFunction, abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> dict[bytes, _ErrorAbi]:
    """The custom errors of the contract `fn` belongs to, named after that contract."""
    abi = list(getattr(fn, "contract_abi", None) or [])
    address = str(getattr(fn, "address", "") or "")
    name = _SYSTEM_NAMES.get(address) if address else None
    if name is None:
        name = next((n for n, a in (abis or {}).items() if list(a) == abi), address or "contract")
    return error_index({name: abi})


def _revert_data(exc: ContractLogicError) -> bytes:
    raw = exc.data
    if isinstance(raw, dict):
        raw = raw.get("data")
    if isinstance(raw, str) and raw.startswith("0x"):
        try:
            return bytes.fromhex(raw[2:])
        except ValueError:
            return b""
    return b""


def http_provider(rpc_url: str, timeout: float) -> HTTPProvider:
    """web3's HTTP provider, retrying idempotent calls when a kept-alive connection drops.

    web3's default retry list names the built-in ConnectionError, which requests' errors do
    not derive from, so without this a node closing an idle pooled connection just as a
    request goes out ("connection aborted") fails the call instead of retrying it.
    """
    retry = ExceptionRetryConfiguration(
        errors=(http_errors.ConnectionError, http_errors.Timeout, ConnectionError),
        retries=5,
        backoff_factor=0.05,
    )
    return HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=retry
    )


class ChainClient:
    """A web3 connection plus an optional local signing account."""

    def __init__(
        self,
        rpc_url: str,
        account: LocalAccount | None = None,
        *,
        timeout: float = 30.0,
        poll_interval: float = 0.02,
        abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        """`abis`: contracts of your own (name -> ABI) to use and to decode errors of."""
        self.rpc_url = rpc_url
        self.abis = dict(abis or {})
        self._errors = error_index(self.abis)
        self.account = account
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.w3 = Web3(http_provider(rpc_url, timeout))
        self._chain_id: int | None = None
        self._next_nonce: int | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ basics

    @property
    def address(self) -> str:
        """The signing account's checksummed address."""
        if self.account is None:
            raise MarketError("this client has no account: pass one to sign transactions")
        return str(self.account.address)

    @property
    def chain_id(self) -> int:
        """The node's chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def with_account(self, account: LocalAccount) -> ChainClient:
        """A client for another account over the same node."""
        return ChainClient(
            self.rpc_url,
            account,
            timeout=self.timeout,
            poll_interval=self.poll_interval,
            abis=self.abis,
        )

    def contract(self, name: str, address: str | bytes | None = None) -> Contract:
        """A web3 contract object for system contract `name`, or for one of `abis` at `address`."""
        if name in self.abis:
            if address is None:
                raise MarketError(f"{name!r} is not a system contract; pass its address")
            return self.w3.eth.contract(
                address=to_checksum_address(address), abi=list(self.abis[name])
            )
        if address is None:
            if name not in SYSTEM_ADDRESSES:
                raise MarketError(f"{name!r} is not a system contract; pass its address")
            address = SYSTEM_ADDRESSES[name]
        checksum = to_checksum_address(address)
        return self.w3.eth.contract(address=checksum, abi=list(load_artifact(name).abi))

    def deploy(self, name: str, bytecode: bytes, *args: Any, value: int = 0) -> Contract:
        """Deploy contract `name` (its ABI given in `abis`) and return it at its address."""
        if name not in self.abis:
            raise MarketError(f"no ABI for {name!r}: pass it in ChainClient(abis=...)")
        factory = self.w3.eth.contract(abi=list(self.abis[name]), bytecode=bytecode)
        params: dict[str, Any] = {"from": self.address, "value": value}
        try:
            tx = factory.constructor(*args).build_transaction(cast(TxParams, params))
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc), self._errors) from None
        receipt = self._send(dict(tx), None)
        return self.contract(name, str(receipt["contractAddress"]))

    def balance(self, address: str | None = None) -> int:
        """Wei held by `address` (default: this client's account)."""
        return int(self.w3.eth.get_balance(to_checksum_address(address or self.address)))

    # ------------------------------------------------------------------ calls

    def _decode(self, exc: ContractLogicError, fn: ContractFunction | None) -> ContractError:
        own = _own_errors(fn, self.abis) if fn is not None else None
        return decode_revert(_revert_data(exc), self._errors, own)

    def call(self, fn: ContractFunction, *, block: BlockIdentifier = "latest") -> Any:
        """Run a view (or simulate a call) and return its decoded result."""
        sender = self.account.address if self.account is not None else None
        params: dict[str, Any] = {"from": sender} if sender else {}
        try:
            return fn.call(cast(TxParams, params), block_identifier=block)
        except ContractLogicError as exc:
            raise decode_revert(
                _revert_data(exc), self._errors, _own_errors(fn, self.abis)
            ) from None

    def transact(
        self, fn: ContractFunction, *, value: int = 0, gas: int | None = None
    ) -> dict[str, Any]:
        """Sign, send and wait for `fn`; return the receipt. Refusals raise ContractError."""
        params: dict[str, Any] = {"from": self.address, "value": value}
        try:
            tx = fn.build_transaction(cast(TxParams, {**params, "gas": gas} if gas else params))
        except ContractLogicError as exc:  # gas estimation ran the call and it reverted
            raise decode_revert(
                _revert_data(exc), self._errors, _own_errors(fn, self.abis)
            ) from None
        return self._send(dict(tx), fn)

    def send_value(self, to: str, value: int) -> dict[str, Any]:
        """A plain PVC transfer from this client's account."""
        tx = {"from": self.address, "to": to_checksum_address(to), "value": value, "gas": 21_000}
        return self._send(tx, None)

    def _send(self, tx: dict[str, Any], fn: ContractFunction | None) -> dict[str, Any]:
        account = self.account
        if account is None:
            raise MarketError("this client has no account: pass one to sign transactions")
        with self._lock:
            pending = int(self.w3.eth.get_transaction_count(account.address, "pending"))
            nonce = max(pending, self._next_nonce or 0)
            self._next_nonce = nonce + 1
        base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
        tx.update(
            {
                "nonce": nonce,
                "chainId": self.chain_id,
                "type": 2,
                "maxPriorityFeePerGas": GWEI,
                "maxFeePerGas": 2 * base + GWEI,
            }
        )
        tx.pop("gasPrice", None)
        signed = account.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            if self._known(signed.hash):
                # A retry after a dropped connection ("already known", or "nonce too low"
                # once mined): the first send reached the node, so wait for that one.
                tx_hash = signed.hash
            else:
                with self._lock:
                    self._next_nonce = None
                raise TransactionFailed(f"the node refused the transaction: {exc}") from None
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.timeout, poll_latency=self.poll_interval
            )
        except TimeExhausted:
            raise TransactionFailed(
                f"transaction 0x{bytes(tx_hash).hex()} not mined within {self.timeout} s"
            ) from None
        doc = dict(receipt)
        if int(cast(int, doc["status"])) != 1:
            raise self._why_failed(tx, fn, int(cast(int, doc["blockNumber"])))
        return doc

    def _known(self, tx_hash: HexBytes) -> bool:
        """Whether the node holds transaction `tx_hash`, pending or mined."""
        try:
            return self.w3.eth.get_transaction(tx_hash) is not None
        except TransactionNotFound:
            return False

    def _why_failed(
        self, tx: Mapping[str, Any], fn: ContractFunction | None, block: int
    ) -> ContractError:
        """Replay a failed transaction as a call on its parent state to learn the reason."""
        replay = {k: tx[k] for k in ("from", "to", "value", "data", "gas") if k in tx}
        try:
            self.w3.eth.call(cast(TxParams, replay), block_identifier=max(block - 1, 0))
        except ContractLogicError as exc:
            return self._decode(exc, fn)
        what = fn.fn_name if fn is not None else "transfer"
        return ContractError(
            "OutOfGas", {}, b"", message=f"{what} failed (out of gas or state changed)"
        )

    # ------------------------------------------------------------------ events

    def events(
        self, contract: Contract, event: str, receipt: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The decoded `event` logs a receipt holds, as plain dicts of arguments."""
        decoded = contract.events[event]().process_receipt(receipt, errors=DISCARD)
        return [dict(e["args"]) for e in decoded]
