"""`did:pv` identifiers: parsing, the DIDRegistry contract, and a W3C DID Core resolver.

A DID names an account (``did:pv:<address>``) or a resource token
(``did:pv:<chainId>:<erc721>:<tokenId>``); the method is specified in docs/did-method.md. The
resolver reads the registry's state (optionally at a past block: DID Core ``versionId``), walks
the registry's change log for history, and attaches the subject's credit record (reputation from
the Reputation contract, when it is deployed) to the document metadata.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.types import BlockIdentifier, FilterParams

from powerverse.contracts.addresses import REPUTATION, RESOURCE_NFT
from powerverse.contracts.artifacts import load_artifact
from powerverse.contracts.exceptions import ContractsError
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError, MarketError

__all__ = [
    "ALL_PURPOSES",
    "ASSERTION_METHOD",
    "AUTHENTICATION",
    "CAPABILITY_DELEGATION",
    "CAPABILITY_INVOCATION",
    "DELEGATE_TYPES",
    "KEY_AGREEMENT",
    "ChangeRecord",
    "Delegate",
    "DidRef",
    "DidRegistry",
    "InvalidDid",
    "PublicKey",
    "Service",
    "delegate_type",
    "format_did",
    "parse_did",
    "parse_openssh_key",
    "resolve",
]

AUTHENTICATION: Final = 1
ASSERTION_METHOD: Final = 2
KEY_AGREEMENT: Final = 4
CAPABILITY_INVOCATION: Final = 8
CAPABILITY_DELEGATION: Final = 16
ALL_PURPOSES: Final = 31
PURPOSE_NAMES: Final = {
    AUTHENTICATION: "authentication",
    ASSERTION_METHOD: "assertionMethod",
    KEY_AGREEMENT: "keyAgreement",
    CAPABILITY_INVOCATION: "capabilityInvocation",
    CAPABILITY_DELEGATION: "capabilityDelegation",
}
DELEGATE_TYPES: Final = {
    "sigAuth": "authentication",
    "veriKey": "assertionMethod",
    "vmAccess": "capabilityInvocation",
}
"""Delegate types with a meaning in the document; others are listed as verification methods."""

CONTEXTS: Final = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/ed25519-2020/v1",
    "https://w3id.org/security/suites/x25519-2020/v1",
    "https://w3id.org/security/suites/secp256k1recovery-2020/v2",
]
RECOVERY_METHOD: Final = "EcdsaSecp256k1RecoveryMethod2020"

# Known key types: raw length and how the document shows the key.
_MULTICODEC: Final = {
    "Ed25519VerificationKey2020": (b"\xed\x01", 32),
    "X25519KeyAgreementKey2020": (b"\xec\x01", 32),
    "EcdsaSecp256k1VerificationKey2019": (b"\xe7\x01", 33),
}
_BASE58_TYPES: Final = {
    "Ed25519VerificationKey2018": 32,
    "X25519KeyAgreementKey2019": 32,
}
_SSH_TYPES: Final = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com")
_ADDRESS = r"0x[0-9a-fA-F]{40}"
_DID_RE: Final = re.compile(rf"^did:pv:(?:(\d{{1,20}}):)?({_ADDRESS})(?::(\d{{1,78}}))?$")


class InvalidDid(MarketError):
    """A string that is not a `did:pv` identifier, or a key that does not fit its type."""


# ---------------------------------------------------------------------- identifiers


@dataclass(frozen=True)
class DidRef:
    """A parsed `did:pv`: an account, or an ERC-721 token (a resource) when `token_id` is set."""

    address: str
    token_id: int | None = None
    chain_id: int | None = None

    @property
    def is_resource(self) -> bool:
        """Whether the DID names a token rather than an account."""
        return self.token_id is not None

    def registry_id(self) -> bytes:
        """The registry's bytes32 id of this DID."""
        if self.token_id is None:
            return bytes(12) + bytes.fromhex(self.address[2:])
        return keccak(abi_encode(["address", "uint256"], [self.address, self.token_id]))


def parse_did(did: str) -> DidRef:
    """Parse `did:pv:[<chainId>:]<address>[:<tokenId>]`; resources need the chain id."""
    match = _DID_RE.match(did.strip())
    if match is None:
        raise InvalidDid(
            f"{did!r} is not a did:pv identifier "
            "(did:pv:<0x address> or did:pv:<chainId>:<0x erc721>:<tokenId>)"
        )
    chain, address, token = match.groups()
    if token is not None and chain is None:
        raise InvalidDid(f"{did!r}: a resource DID names its chain: did:pv:<chainId>:<erc721>:<id>")
    token_id = int(token) if token is not None else None
    if token_id is not None and token_id >= 2**256:
        raise InvalidDid(f"{did!r}: the token id does not fit in 256 bits")
    return DidRef(to_checksum_address(address), token_id, int(chain) if chain else None)


def format_did(address: str, token_id: int | None = None, *, chain_id: int | None = None) -> str:
    """The DID of an account (`did:pv:<address>`) or of a token (chain id required)."""
    checksum = to_checksum_address(address)
    if token_id is None:
        return f"did:pv:{checksum}" if chain_id is None else f"did:pv:{chain_id}:{checksum}"
    if chain_id is None:
        raise InvalidDid("a resource DID needs the chain id")
    return f"did:pv:{chain_id}:{checksum}:{token_id}"


def delegate_type(name: str) -> bytes:
    """A delegate type as the registry stores it: ASCII, right-padded to 32 bytes."""
    raw = name.encode("ascii", errors="strict") if name.isascii() else b""
    if not raw or len(raw) > 32:
        raise InvalidDid(f"a delegate type is 1 to 32 ASCII characters, got {name!r}")
    return raw.ljust(32, b"\0")


def _delegate_type_name(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("ascii", errors="replace")


def parse_openssh_key(line: str) -> tuple[str, bytes]:
    """(`keyType`, wire blob) of an OpenSSH public key line such as `ssh-ed25519 AAAA... me@x`."""
    parts = line.split()
    if len(parts) < 2 or parts[0] not in _SSH_TYPES:
        raise InvalidDid(f"not an OpenSSH public key line (types: {', '.join(_SSH_TYPES)})")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise InvalidDid("the OpenSSH key's base64 body is malformed") from None
    name_len = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + name_len] != parts[0].encode():
        raise InvalidDid("the OpenSSH key's blob does not name its own type")
    return parts[0], blob


def check_key(key_type: str, public_key: bytes) -> None:
    """Refuse a key whose length does not fit a known type (unknown types pass)."""
    expected = _MULTICODEC.get(key_type, (b"", 0))[1] or _BASE58_TYPES.get(key_type, 0)
    if expected and len(public_key) != expected:
        raise InvalidDid(f"a {key_type} key is {expected} bytes, got {len(public_key)}")
    if key_type in _SSH_TYPES:
        parse_openssh_key(f"{key_type} {base64.b64encode(public_key).decode()}")


# ---------------------------------------------------------------------- records


@dataclass(frozen=True)
class PublicKey:
    """A public key in a document; `purposes` are the bit flags above; `valid_to` 0: no expiry."""

    key_id: str
    key_type: str
    public_key: bytes
    purposes: int = AUTHENTICATION
    valid_to: int = 0


@dataclass(frozen=True)
class Service:
    """A service endpoint (e.g. a provider agent's URL)."""

    service_id: str
    service_type: str
    endpoint: str


@dataclass(frozen=True)
class Delegate:
    """An account allowed to act for the DID as `delegate_type` until `valid_to`."""

    delegate: str
    delegate_type: str
    valid_to: int


@dataclass(frozen=True)
class ChangeRecord:
    """One change in a DID's history (an event of the registry)."""

    block: int
    event: str
    args: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- contract


class DidRegistry:
    """Typed access to the DIDRegistry contract through a :class:`ChainClient`."""

    def __init__(self, client: ChainClient, *, address: str | bytes | None = None) -> None:
        self.client = client
        self.contract: Contract = client.contract("DIDRegistry", address)

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def id_of(self, did: str | DidRef) -> bytes:
        """The registry id of a DID (refuses a resource DID of another chain)."""
        ref = parse_did(did) if isinstance(did, str) else did
        if ref.chain_id is not None and ref.chain_id != self.client.chain_id:
            raise InvalidDid(
                f"the DID is on chain {ref.chain_id}; this node runs {self.client.chain_id}"
            )
        return ref.registry_id()

    def own_did(self) -> str:
        """The DID of the client's account."""
        return format_did(self.client.address)

    def resource_did(self, token_id: int, token: str | bytes = RESOURCE_NFT) -> str:
        """The DID of a resource token (default: the ResourceNFT system contract)."""
        return format_did(to_checksum_address(token), token_id, chain_id=self.client.chain_id)

    # -- transactions

    def bind_resource(self, did: str) -> bytes:
        """Make a resource DID known to the registry, so its token owner controls it."""
        ref = parse_did(did)
        if ref.token_id is None:
            raise InvalidDid(f"{did} names an account, not a resource")
        self.id_of(ref)
        self.client.transact(self._fn.bindResource(ref.address, ref.token_id))
        return ref.registry_id()

    def change_controller(self, did: str, controller: str) -> None:
        """Hand control of the document to `controller` (an address)."""
        fn = self._fn.changeController(self.id_of(did), to_checksum_address(controller))
        self.client.transact(fn)

    def add_key(self, did: str, key: PublicKey) -> None:
        """Add a public key (checked against its type's length when the type is known)."""
        check_key(key.key_type, key.public_key)
        row = (key.key_id, key.key_type, key.public_key, key.purposes, key.valid_to)
        self.client.transact(self._fn.addKey(self.id_of(did), row))

    def remove_key(self, did: str, key_id: str) -> None:
        """Remove the key `key_id`."""
        self.client.transact(self._fn.removeKey(self.id_of(did), key_id))

    def add_service(self, did: str, service: Service) -> None:
        """Add a service endpoint."""
        row = (service.service_id, service.service_type, service.endpoint)
        self.client.transact(self._fn.addService(self.id_of(did), row))

    def remove_service(self, did: str, service_id: str) -> None:
        """Remove the service `service_id`."""
        self.client.transact(self._fn.removeService(self.id_of(did), service_id))

    def add_delegate(self, did: str, kind: str, delegate: str, valid_to: int) -> None:
        """Let `delegate` act as `kind` (sigAuth, veriKey, vmAccess, ...) until `valid_to`."""
        fn = self._fn.addDelegate(
            self.id_of(did), delegate_type(kind), to_checksum_address(delegate), valid_to
        )
        self.client.transact(fn)

    def revoke_delegate(self, did: str, kind: str, delegate: str) -> None:
        """Revoke a delegate grant."""
        fn = self._fn.revokeDelegate(
            self.id_of(did), delegate_type(kind), to_checksum_address(delegate)
        )
        self.client.transact(fn)

    def deactivate(self, did: str) -> None:
        """Deactivate the DID for ever."""
        self.client.transact(self._fn.deactivate(self.id_of(did)))

    # -- views

    def controller(self, did: str, *, block: BlockIdentifier = "latest") -> str | None:
        """The controlling address, or None (unknown resource, or deactivated)."""
        addr = str(self.client.call(self._fn.controllerOf(self.id_of(did)), block=block))
        return None if int(addr, 16) == 0 else addr

    def keys(self, did: str, *, block: BlockIdentifier = "latest") -> list[PublicKey]:
        """The document's keys (expired ones included)."""
        rows = self.client.call(self._fn.keysOf(self.id_of(did)), block=block)
        return [PublicKey(r[0], r[1], bytes(r[2]), int(r[3]), int(r[4])) for r in rows]

    def services(self, did: str, *, block: BlockIdentifier = "latest") -> list[Service]:
        """The document's services."""
        rows = self.client.call(self._fn.servicesOf(self.id_of(did)), block=block)
        return [Service(r[0], r[1], r[2]) for r in rows]

    def delegates(self, did: str, *, block: BlockIdentifier = "latest") -> list[Delegate]:
        """The document's delegate grants (expired ones included)."""
        rows = self.client.call(self._fn.delegatesOf(self.id_of(did)), block=block)
        return [Delegate(str(r[0]), _delegate_type_name(bytes(r[1])), int(r[2])) for r in rows]

    def valid_delegate(self, did: str, kind: str, delegate: str) -> bool:
        """Whether `delegate` holds an unexpired `kind` grant now."""
        fn = self._fn.validDelegate(
            self.id_of(did), delegate_type(kind), to_checksum_address(delegate)
        )
        return bool(self.client.call(fn))

    def is_deactivated(self, did: str, *, block: BlockIdentifier = "latest") -> bool:
        """Whether the DID was deactivated."""
        return bool(self.client.call(self._fn.isDeactivated(self.id_of(did)), block=block))

    def changed(self, did: str, *, block: BlockIdentifier = "latest") -> int:
        """The block of the DID's latest change (0: never changed)."""
        return int(self.client.call(self._fn.changed(self.id_of(did)), block=block))

    def history(self, did: str, *, limit: int = 1_000) -> list[ChangeRecord]:
        """Every change of the DID, oldest first (walks `previousChange` back from `changed`)."""
        ident = self.id_of(did)
        topic = "0x" + ident.hex()
        records: list[ChangeRecord] = []
        block = self.changed(did)
        while block and len(records) < limit:
            logs = self.client.w3.eth.get_logs(
                {
                    "address": self.contract.address,
                    "fromBlock": block,
                    "toBlock": block,
                    "topics": [None, topic],
                }
            )
            previous = 0
            batch: list[ChangeRecord] = []
            for log in logs:
                event = self._decode(log)
                if event is None:
                    continue
                name, args = event
                batch.append(ChangeRecord(block, name, args))
                previous = int(args.get("previousChange", previous))
            records.extend(reversed(batch))
            if previous >= block:
                break  # a malformed chain of changes; stop rather than loop
            block = previous
        records.reverse()
        return records

    def _decode(self, log: Any) -> tuple[str, dict[str, Any]] | None:
        topics = log["topics"]
        name = _event_names(tuple(self.contract.abi)).get(bytes(topics[0])) if topics else None
        if name is None:
            return None
        decoded = self.contract.events[name]().process_log(log)
        return name, {k: _plain(v) for k, v in decoded["args"].items()}


def _event_names(abi: tuple[Any, ...]) -> dict[bytes, str]:
    """Event topic -> event name for an ABI."""
    return {
        keccak(text=f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})"): str(e["name"])
        for e in abi
        if e.get("type") == "event"
    }


def _abi_type(item: Any) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------- resolver


def resolve(client: ChainClient, did: str, *, block: BlockIdentifier = "latest") -> dict[str, Any]:
    """Resolve `did` to a W3C DID resolution result: document, document and resolution metadata.

    `block` resolves the DID as it was at that block (its `versionId`). Invalid DIDs and DIDs of
    another chain resolve to an `invalidDid` error, unknown resources to `notFound`.
    """
    try:
        ref = parse_did(did)
        registry = DidRegistry(client)
        registry.id_of(ref)
    except InvalidDid as exc:
        return _error("invalidDid", str(exc))
    canonical = _canonical(ref, client.chain_id)
    head = client.w3.eth.get_block(block)
    height, now = int(head["number"]), int(head["timestamp"])
    changed = registry.changed(canonical, block=height)
    meta: dict[str, Any] = {"versionId": str(height)}
    if changed:
        updated = client.w3.eth.get_block(changed)["timestamp"]
        meta["updated"] = _iso(int(updated))
        meta["versionId"] = str(changed)
    if registry.is_deactivated(canonical, block=height):
        meta["deactivated"] = True
        return {
            "didDocument": {"@context": CONTEXTS[:1], "id": canonical},
            "didDocumentMetadata": meta,
            "didResolutionMetadata": {"contentType": "application/did+ld+json"},
        }
    controller = registry.controller(canonical, block=height)
    if controller is None:
        return _error("notFound", f"{canonical} names no existing token (or was never bound)")
    if ref.is_resource:
        meta["resource"] = {"token": ref.address, "tokenId": str(ref.token_id)}
    document = _document(
        canonical,
        client.chain_id,
        controller,
        registry.keys(canonical, block=height),
        registry.services(canonical, block=height),
        registry.delegates(canonical, block=height),
        now,
    )
    meta["creditRecord"] = credit_record(client, controller, block=height)
    return {
        "didDocument": document,
        "didDocumentMetadata": meta,
        "didResolutionMetadata": {"contentType": "application/did+ld+json"},
    }


def _canonical(ref: DidRef, chain_id: int) -> str:
    if ref.is_resource:
        return format_did(ref.address, ref.token_id, chain_id=chain_id)
    return format_did(ref.address)


def _document(
    did: str,
    chain_id: int,
    controller: str,
    keys: list[PublicKey],
    services: list[Service],
    delegates: list[Delegate],
    now: int,
) -> dict[str, Any]:
    controller_did = format_did(controller)
    methods: list[dict[str, Any]] = [
        {
            "id": f"{did}#controller",
            "type": RECOVERY_METHOD,
            "controller": controller_did,
            "blockchainAccountId": f"eip155:{chain_id}:{controller}",
        }
    ]
    relations: dict[str, list[str]] = {name: [] for name in PURPOSE_NAMES.values()}
    for name in ("authentication", "assertionMethod", "capabilityInvocation"):
        relations[name].append(f"{did}#controller")
    relations["capabilityDelegation"].append(f"{did}#controller")
    for n, d in enumerate(delegates, start=1):
        if d.valid_to <= now:
            continue
        ref = f"{did}#delegate-{n}"
        methods.append(
            {
                "id": ref,
                "type": RECOVERY_METHOD,
                "controller": did,
                "blockchainAccountId": f"eip155:{chain_id}:{d.delegate}",
                "delegateType": d.delegate_type,
                "expires": _iso(d.valid_to),
            }
        )
        relation = DELEGATE_TYPES.get(d.delegate_type)
        if relation is not None:
            relations[relation].append(ref)
    for key in keys:
        if key.valid_to and key.valid_to <= now:
            continue
        ref = f"{did}#{key.key_id}"
        method = {"id": ref, "type": key.key_type, "controller": did, **_key_material(key)}
        if key.valid_to:
            method["expires"] = _iso(key.valid_to)
        methods.append(method)
        for bit, name in PURPOSE_NAMES.items():
            if key.purposes & bit:
                relations[name].append(ref)
    document: dict[str, Any] = {"@context": CONTEXTS, "id": did}
    if controller_did != did:
        document["controller"] = controller_did
    document["verificationMethod"] = methods
    document.update({name: refs for name, refs in relations.items() if refs})
    if services:
        document["service"] = [
            {"id": f"{did}#{s.service_id}", "type": s.service_type, "serviceEndpoint": s.endpoint}
            for s in services
        ]
    return document


def _key_material(key: PublicKey) -> dict[str, str]:
    if key.key_type in _MULTICODEC:
        prefix, _ = _MULTICODEC[key.key_type]
        return {"publicKeyMultibase": "z" + base58btc(prefix + key.public_key)}
    if key.key_type in _BASE58_TYPES:
        return {"publicKeyBase58": base58btc(key.public_key)}
    if key.key_type in _SSH_TYPES:
        blob = base64.b64encode(key.public_key).decode()
        return {"publicKeyOpenSsh": f"{key.key_type} {blob}"}
    return {"publicKeyHex": key.public_key.hex()}


LOG_CHUNK: Final = 10_000
"""Blocks per eth_getLogs request (the node's maximum range)."""


def credit_record(
    client: ChainClient,
    subject: str,
    *,
    block: BlockIdentifier = "latest",
    scan_blocks: int = 100_000,
    max_items: int = 100,
) -> dict[str, Any]:
    """The subject's credit record from the Reputation contract, when it is deployed.

    Reputation and counts come from its state; the orders the subject was a party to and the
    reviews it received come from its `OrderRecorded` and `Reviewed` events over the last
    `scan_blocks` blocks (newest first, at most `max_items` of each). Without a Reputation
    contract at its system address the record is empty and says why.
    """
    record: dict[str, Any] = {"subject": format_did(subject), "orders": [], "reviews": []}
    address = to_checksum_address(REPUTATION)
    if not client.w3.eth.get_code(address, block):
        record["available"] = False
        record["note"] = "no Reputation contract is deployed on this chain"
        return record
    reputation = client.w3.eth.contract(address=address, abi=list(_reputation_abi()))
    fn = reputation.functions
    try:
        score = int(client.call(fn.reputationOf(subject), block=block))
        minimum = int(client.call(fn.minReputation(), block=block))
        stats = client.call(fn.statsOf(subject), block=block) if hasattr(fn, "statsOf") else None
    except ContractError as exc:
        record["available"] = False
        record["note"] = f"the Reputation contract refused: {exc}"
        return record
    record.update(
        {
            "available": True,
            "reputation": score,
            "minReputation": minimum,
            "inGoodStanding": score >= minimum,
        }
    )
    if stats is not None:
        names = ("orders", "reviewsReceived", "reviewsGiven", "failures")
        record["stats"] = dict(zip(names, (int(v) for v in stats[:4]), strict=True))
        sums = ("qualitySum", "serviceSum", "efficiencySum")
        record["stats"].update(zip(sums, (int(v) for v in stats[4:7]), strict=True))
    if hasattr(reputation.events, "OrderRecorded"):
        _scan_history(client, reputation, subject, block, scan_blocks, max_items, record)
    return record


def _reputation_abi() -> tuple[dict[str, Any], ...]:
    """The Reputation contract's ABI, or the IReputation interface's when it is not built."""
    try:
        return load_artifact("Reputation").abi
    except ContractsError:  # not built in this checkout
        return load_artifact("IReputation").abi


def _scan_history(
    client: ChainClient,
    reputation: Contract,
    subject: str,
    block: BlockIdentifier,
    scan_blocks: int,
    max_items: int,
    record: dict[str, Any],
) -> None:
    """Fill the record's orders and received reviews from the Reputation contract's events."""
    head = int(client.w3.eth.get_block(block)["number"])
    start = max(0, head - scan_blocks + 1)
    topic = "0x" + bytes.fromhex(to_checksum_address(subject)[2:]).rjust(32, b"\0").hex()
    ordered = reputation.events.OrderRecorded
    reviewed = reputation.events.Reviewed
    orders: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    hi = head
    while hi >= start and (len(orders) < max_items or len(reviews) < max_items):
        lo = max(start, hi - LOG_CHUNK + 1)
        window: dict[str, Any] = {"address": reputation.address, "fromBlock": lo, "toBlock": hi}
        found: list[tuple[int, int, dict[str, Any]]] = []
        for topics, event in (
            ([ordered.topic, None, topic], ordered),  # as consumer
            ([ordered.topic, None, None, topic], ordered),  # as provider
            ([reviewed.topic, None, None, topic], reviewed),  # reviews received
        ):
            for log in client.w3.eth.get_logs(cast(FilterParams, {**window, "topics": topics})):
                args = dict(event().process_log(log)["args"])
                doc = {k: _plain(v) for k, v in args.items()}
                doc["block"] = int(log["blockNumber"])
                found.append((int(log["blockNumber"]), int(log["logIndex"]), doc))
        for _, _, doc in sorted(found, key=lambda f: (f[0], f[1]), reverse=True):
            target = reviews if "reviewer" in doc else orders
            if len(target) < max_items:
                target.append(doc)
        hi = lo - 1
    record["orders"], record["reviews"] = orders, reviews
    record["scannedFromBlock"] = start


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "didDocument": None,
        "didDocumentMetadata": {},
        "didResolutionMetadata": {"error": code, "errorMessage": message},
    }


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58btc(data: bytes) -> str:
    """Bitcoin base58 (leading zero bytes become '1')."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_B58[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))
