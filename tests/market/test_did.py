"""The DIDRegistry contract and the did:pv resolver on a real dev node."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from powerverse.contracts.system import REPUTATION
from powerverse.market.client import ChainClient
from powerverse.market.did import (
    ASSERTION_METHOD,
    AUTHENTICATION,
    KEY_AGREEMENT,
    DidRef,
    DidRegistry,
    InvalidDid,
    PublicKey,
    Service,
    base58btc,
    check_key,
    format_did,
    parse_did,
    parse_openssh_key,
    resolve,
)
from powerverse.market.exceptions import ContractError
from tests.market.conftest import ClientFactory, increase_time
from tests.rpc.conftest import ThreadedNode

NFT = json.loads(
    (Path(__file__).parents[1] / "contracts" / "artifacts" / "PVTestNFT.json").read_text()
)
ED = b"\x11" * 32
X = b"\x22" * 32


def registry(client: ClientFactory, i: int) -> DidRegistry:
    return DidRegistry(client(i))


def refused(name: str) -> Any:
    return pytest.raises(ContractError, match=rf"\b{name}\(")


def head_time(node: ThreadedNode) -> int:
    return int(node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def ssh_blob(key: bytes) -> bytes:
    name = b"ssh-ed25519"
    return len(name).to_bytes(4, "big") + name + len(key).to_bytes(4, "big") + key


@pytest.fixture(scope="module")
def nft(dev_node: ThreadedNode, dev_signers: list[LocalAccount]) -> tuple[ChainClient, Contract]:
    """A test ERC-721 deployed by dev account 9, which mints tokens."""
    minter = ChainClient(dev_node.url, dev_signers[9], abis={"PVTestNFT": NFT["abi"]})
    return minter, minter.deploy("PVTestNFT", bytes.fromhex(NFT["bytecode"][2:]))


# ---------------------------------------------------------------------- identifiers


def test_parse_and_format_round_trip() -> None:
    addr = "0x" + "ab" * 20
    ref = parse_did(f"did:pv:{addr}")
    assert ref == DidRef(format_did(addr).removeprefix("did:pv:"))
    assert not ref.is_resource and ref.registry_id() == bytes(12) + bytes.fromhex("ab" * 20)
    res = parse_did(f"did:pv:1337:{addr}:42")
    assert res.is_resource and res.token_id == 42 and res.chain_id == 1337
    assert format_did(addr, 42, chain_id=1337) == f"did:pv:1337:{res.address}:42"
    assert parse_did(format_did(addr, chain_id=7)).chain_id == 7


@pytest.mark.parametrize(
    "bad",
    [
        "did:pv:0x1234",
        "did:eth:0x" + "ab" * 20,
        "did:pv:0x" + "ab" * 20 + ":42",  # a resource needs its chain id
        "did:pv:1:0x" + "ab" * 20 + ":" + str(2**256),
        "did:pv:abc:0x" + "ab" * 20,
        "",
    ],
)
def test_invalid_dids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidDid):
        parse_did(bad)
    with pytest.raises(InvalidDid):
        format_did("0x" + "ab" * 20, 1)  # resource without chain id


def test_key_checks() -> None:
    check_key("Ed25519VerificationKey2020", ED)
    with pytest.raises(InvalidDid, match="32 bytes"):
        check_key("Ed25519VerificationKey2020", ED[:31])
    check_key("MyOwnKeyType", b"\x01")  # unknown types pass
    key_type, blob = parse_openssh_key(
        "ssh-ed25519 " + base64.b64encode(ssh_blob(ED)).decode() + " me@host"
    )
    assert key_type == "ssh-ed25519" and blob == ssh_blob(ED)
    with pytest.raises(InvalidDid):
        parse_openssh_key("ssh-rsa " + base64.b64encode(ssh_blob(ED)).decode())
    with pytest.raises(InvalidDid):
        parse_openssh_key("ssh-ed25519 !!!")
    assert base58btc(b"\0\0\x01") == "112"
    assert base58btc(b"hello world") == "StV1DL6CwTryKyV"


# ---------------------------------------------------------------------- account DIDs


def test_account_did_keys_services_and_resolution(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    r = registry(client, 1)
    did = r.own_did()
    assert r.controller(did) == r.client.address
    r.add_key(did, PublicKey("key-1", "Ed25519VerificationKey2020", ED, AUTHENTICATION))
    r.add_key(did, PublicKey("enc", "X25519KeyAgreementKey2019", X, KEY_AGREEMENT))
    r.add_key(did, PublicKey("ssh", "ssh-ed25519", ssh_blob(ED), AUTHENTICATION))
    r.add_service(did, Service("agent", "PowerVerseAgent", "https://agent.example:8443"))

    result = resolve(r.client, did)
    doc = result["didDocument"]
    assert result["didResolutionMetadata"]["contentType"] == "application/did+ld+json"
    assert doc["id"] == did and "controller" not in doc
    methods = {m["id"].split("#")[1]: m for m in doc["verificationMethod"]}
    assert methods["controller"]["blockchainAccountId"].endswith(r.client.address)
    assert methods["key-1"]["publicKeyMultibase"] == "z" + base58btc(b"\xed\x01" + ED)
    assert methods["enc"]["publicKeyBase58"] == base58btc(X)
    assert methods["ssh"]["publicKeyOpenSsh"].startswith("ssh-ed25519 AAAA")
    assert f"{did}#key-1" in doc["authentication"]
    assert doc["keyAgreement"] == [f"{did}#enc"]
    assert doc["service"] == [
        {
            "id": f"{did}#agent",
            "type": "PowerVerseAgent",
            "serviceEndpoint": "https://agent.example:8443",
        }
    ]
    meta = result["didDocumentMetadata"]
    assert int(meta["versionId"]) == r.changed(did) and meta["updated"].endswith("Z")

    r.remove_key(did, "ssh")
    r.remove_service(did, "agent")
    doc = resolve(r.client, did)["didDocument"]
    assert "service" not in doc
    assert f"{did}#ssh" not in {m["id"] for m in doc["verificationMethod"]}


def test_key_and_service_refusals(client: ClientFactory) -> None:
    r, other = registry(client, 2), registry(client, 3)
    did = r.own_did()
    key = PublicKey("k", "Ed25519VerificationKey2020", ED, ASSERTION_METHOD)
    with refused("NotController"):
        other.add_key(did, key)
    r.add_key(did, key)
    with refused("KeyExists"):
        r.add_key(did, key)
    with refused("KeyNotFound"):
        r.remove_key(did, "nope")
    with refused("InvalidPurposes"):
        r.add_key(did, PublicKey("p0", "Custom", b"\x01", 0))
    with refused("InvalidPurposes"):
        r.add_key(did, PublicKey("p32", "Custom", b"\x01", 32))
    with refused("EmptyField"):
        r.add_key(did, PublicKey("", "Custom", b"\x01"))
    with refused("EmptyField"):
        r.add_key(did, PublicKey("e", "Custom", b""))
    with refused("FieldTooLong"):
        r.add_key(did, PublicKey("x" * 65, "Custom", b"\x01"))
    with refused("ExpiryInPast"):
        r.add_key(did, PublicKey("old", "Custom", b"\x01", valid_to=1))
    with pytest.raises(InvalidDid):
        r.add_key(did, PublicKey("short", "Ed25519VerificationKey2020", b"\x01"))
    for n in range(15):
        r.add_key(did, PublicKey(f"k{n}", "Custom", b"\x01"))
    with refused("TooMany"):
        r.add_key(did, PublicKey("k16", "Custom", b"\x01"))

    s = Service("svc", "LinkedDomains", "https://example.org")
    r.add_service(did, s)
    with refused("ServiceExists"):
        r.add_service(did, s)
    with refused("ServiceNotFound"):
        r.remove_service(did, "nope")
    with refused("FieldTooLong"):
        r.add_service(did, Service("long", "T", "https://" + "a" * 600))
    with refused("NotController"):
        other.remove_service(did, "svc")


def test_expired_keys_and_delegates_leave_the_document(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    r = registry(client, 4)
    did, helper = r.own_did(), client(5).address
    soon = head_time(dev_node) + 600
    r.add_key(did, PublicKey("temp", "Ed25519VerificationKey2020", ED, AUTHENTICATION, soon))
    r.add_delegate(did, "sigAuth", helper, soon)
    r.add_delegate(did, "vmAccess", helper, soon + 10**6)
    assert r.valid_delegate(did, "sigAuth", helper)
    doc = resolve(r.client, did)["didDocument"]
    assert f"{did}#temp" in doc["authentication"]
    assert f"{did}#delegate-1" in doc["authentication"]
    assert f"{did}#delegate-2" in doc["capabilityInvocation"]

    increase_time(dev_node, 700)
    assert not r.valid_delegate(did, "sigAuth", helper)
    assert r.valid_delegate(did, "vmAccess", helper)
    doc = resolve(r.client, did)["didDocument"]
    ids = {m["id"] for m in doc["verificationMethod"]}
    assert f"{did}#temp" not in ids and f"{did}#delegate-1" not in ids
    assert f"{did}#delegate-2" in doc["capabilityInvocation"]
    assert len(r.keys(did)) == 1  # still stored, just expired


def test_delegate_refusals_and_revocation(client: ClientFactory, dev_node: ThreadedNode) -> None:
    r = registry(client, 6)
    did, helper = r.own_did(), client(7).address
    later = head_time(dev_node) + 10**6
    with refused("ExpiryInPast"):
        r.add_delegate(did, "sigAuth", helper, 1)
    with refused("ZeroAddress"):
        r.add_delegate(did, "sigAuth", "0x" + "00" * 20, later)
    with refused("DelegateNotFound"):
        r.revoke_delegate(did, "sigAuth", helper)
    with pytest.raises(InvalidDid):
        r.add_delegate(did, "x" * 33, helper, later)
    r.add_delegate(did, "sigAuth", helper, later)
    r.add_delegate(did, "sigAuth", helper, later + 1)  # renews, does not duplicate
    assert [d.valid_to for d in r.delegates(did)] == [later + 1]
    with refused("NotController"):
        registry(client, 7).revoke_delegate(did, "sigAuth", helper)
    r.revoke_delegate(did, "sigAuth", helper)
    assert not r.valid_delegate(did, "sigAuth", helper)
    assert r.delegates(did) == []


def test_controller_change_and_deactivation(client: ClientFactory) -> None:
    r, new = registry(client, 8), registry(client, 10)
    did = r.own_did()
    with refused("ZeroAddress"):
        r.change_controller(did, "0x" + "00" * 20)
    r.change_controller(did, new.client.address)
    assert r.controller(did) == new.client.address
    with refused("NotController"):
        r.add_service(did, Service("s", "T", "https://x"))
    new.add_service(did, Service("s", "T", "https://x"))
    doc = resolve(r.client, did)["didDocument"]
    assert doc["controller"] == format_did(new.client.address)

    new.deactivate(did)
    assert r.is_deactivated(did) and r.controller(did) is None
    with refused("IdentityDeactivated"):
        new.add_service(did, Service("t", "T", "https://x"))
    with refused("IdentityDeactivated"):
        new.change_controller(did, new.client.address)
    result = resolve(r.client, did)
    assert result["didDocumentMetadata"]["deactivated"] is True
    assert result["didDocument"] == {"@context": ["https://www.w3.org/ns/did/v1"], "id": did}
    assert r.services(did) == []


def test_history_and_past_versions(client: ClientFactory) -> None:
    r = registry(client, 11)
    did = r.own_did()
    r.add_key(did, PublicKey("a", "Ed25519VerificationKey2020", ED))
    first = r.changed(did)
    r.add_service(did, Service("s", "T", "https://x"))
    r.remove_key(did, "a")
    history = r.history(did)
    assert [h.event for h in history] == ["KeyAdded", "ServiceAdded", "KeyRemoved"]
    assert history[0].block == first and history[1].args["previousChange"] == first
    old = resolve(r.client, did, block=first)
    assert old["didDocumentMetadata"]["versionId"] == str(first)
    assert f"{did}#a" in old["didDocument"]["authentication"]
    assert f"{did}#a" not in resolve(r.client, did)["didDocument"]["authentication"]


# ---------------------------------------------------------------------- resource DIDs


def test_resource_did_follows_the_token_owner(
    client: ClientFactory, nft: tuple[ChainClient, Contract]
) -> None:
    minter, token = nft
    owner, buyer, friend = registry(client, 12), registry(client, 13), client(14).address
    minter.transact(token.functions.mint(owner.client.address, 7))
    did = owner.resource_did(7, token.address)
    assert did == f"did:pv:{owner.client.chain_id}:{token.address}:7"
    with refused("UnknownIdentity"):
        owner.add_service(did, Service("vm", "Ssh", "ssh://vm.example"))
    assert resolve(owner.client, did)["didResolutionMetadata"]["error"] == "notFound"
    owner.bind_resource(did)
    owner.bind_resource(did)  # idempotent
    assert owner.controller(did) == owner.client.address
    owner.add_service(did, Service("vm", "Ssh", "ssh://vm.example"))
    owner.change_controller(did, friend)
    assert owner.controller(did) == friend
    result = resolve(owner.client, did)
    assert result["didDocumentMetadata"]["resource"] == {"token": token.address, "tokenId": "7"}
    assert result["didDocument"]["controller"] == format_did(friend)

    # the token changes hands: the explicit controller lapses, the new owner controls
    owner.client.transact(
        token.functions.transferFrom(owner.client.address, buyer.client.address, 7)
    )
    assert owner.controller(did) == buyer.client.address
    with refused("NotController"):
        owner.remove_service(did, "vm")
    buyer.remove_service(did, "vm")


def test_resource_refusals(client: ClientFactory, nft: tuple[ChainClient, Contract]) -> None:
    r = registry(client, 15)
    _, token = nft
    with refused("NotAContract"):
        r.bind_resource(f"did:pv:{r.client.chain_id}:{r.client.address}:1")
    missing = r.resource_did(999, token.address)
    r.bind_resource(missing)  # binding is allowed, but nobody controls a token that does not exist
    assert r.controller(missing) is None
    with refused("UnknownIdentity"):
        r.add_service(missing, Service("s", "T", "https://x"))
    with pytest.raises(InvalidDid, match="names an account"):
        r.bind_resource(r.own_did())
    other_chain = f"did:pv:{r.client.chain_id + 1}:{token.address}:1"
    with pytest.raises(InvalidDid, match="on chain"):
        r.bind_resource(other_chain)
    assert resolve(r.client, other_chain)["didResolutionMetadata"]["error"] == "invalidDid"
    assert resolve(r.client, "did:pv:nope")["didResolutionMetadata"]["error"] == "invalidDid"


# ---------------------------------------------------------------------- credit record


def test_credit_record_links_orders_and_reviews(client: ClientFactory) -> None:
    consumer, provider, recorder, foundation = client(16), client(17), client(18), client(0)
    subject = format_did(provider.address)
    if not provider.w3.eth.get_code(provider.w3.to_checksum_address(REPUTATION)):
        record = resolve(provider, subject)["didDocumentMetadata"]["creditRecord"]
        assert record["available"] is False and "no Reputation contract" in record["note"]
        assert record["orders"] == [] and record["reviews"] == []
        return
    reputation = foundation.contract("Reputation")
    role = foundation.call(reputation.functions.RECORDER_ROLE())
    foundation.transact(reputation.functions.grantRole(role, recorder.address))
    order = b"\x42" * 32
    recorder.transact(reputation.functions.recordOrder(order, consumer.address, provider.address))
    consumer.transact(reputation.functions.review(order, 5, 4, 5, "bafy-comment"))

    record = resolve(provider, subject)["didDocumentMetadata"]["creditRecord"]
    assert record["available"] is True and record["subject"] == subject
    assert record["inGoodStanding"] == (record["reputation"] >= record["minReputation"])
    assert record["stats"]["orders"] == 1 and record["stats"]["reviewsReceived"] == 1
    assert [o["orderKey"] for o in record["orders"]] == ["0x" + order.hex()]
    (review,) = record["reviews"]
    assert (review["reviewer"], review["quality"], review["comment"]) == (
        consumer.address,
        5,
        "bafy-comment",
    )
    # the consumer's record shows the same order, and no review received
    mine = resolve(consumer, format_did(consumer.address))["didDocumentMetadata"]["creditRecord"]
    assert [o["orderKey"] for o in mine["orders"]] == ["0x" + order.hex()]
    assert mine["reviews"] == []
