"""The genesis Airdrop on a real dev node: registration by registrars only, Merkle claims, one
claim per address whichever way it is eligible, bad proofs refused, and the cap."""

from __future__ import annotations

import pytest
from eth_account import Account

from powerverse.contracts.artifacts import load_artifact
from powerverse.contracts.system import AIRDROP
from powerverse.market.admin import role_id
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.tokenomics import Airdrop, MerkleTree, merkle_leaf
from tests.market.conftest import ClientFactory
from tests.market.market_helpers import FOUNDATION, refused

PVC = 10**18
CLAIM = 500 * PVC
AIRDROP_ABI = load_artifact("Airdrop").abi


def _fresh_address(seed: int) -> str:
    return str(Account.from_key((0xA1D0 + seed).to_bytes(32, "big")).address)


def test_genesis_airdrop(client: ClientFactory) -> None:
    status = Airdrop(client(1)).status()
    assert status.address.lower() == "0x" + AIRDROP.hex()
    assert status.claim_amount == CLAIM and status.max_claims == 56_000
    assert status.balance == 28_000_000 * PVC
    assert status.claim_count == status.registered_count == 0
    assert status.merkle_root == bytes(32)
    contract = Airdrop(client(FOUNDATION)).contract
    me = client(FOUNDATION).address
    for role in ("DEFAULT_ADMIN_ROLE", "REGISTRAR_ROLE"):
        assert client(1).call(contract.functions.hasRole(role_id(role), me))
    assert not client(1).call(
        contract.functions.hasRole(role_id("REGISTRAR_ROLE"), client(1).address)
    )


def test_only_registrars_register_and_only_the_admin_sets_the_root(client: ClientFactory) -> None:
    outsider = Airdrop(client(5))
    registrar_role = "0x" + role_id("REGISTRAR_ROLE").hex()
    with refused("AccessControlUnauthorizedAccount", client(5).address, registrar_role):
        outsider.register([client(6).address])
    with refused("AccessControlUnauthorizedAccount", client(5).address, "0x" + "00" * 32):
        outsider.set_merkle_root(b"\x01" * 32)
    with refused("ZeroAddress"):
        Airdrop(client(FOUNDATION)).register(["0x" + "00" * 20])
    # the admin may make another registrar
    foundation = Airdrop(client(FOUNDATION))
    client(FOUNDATION).transact(
        foundation.contract.functions.grantRole(role_id("REGISTRAR_ROLE"), client(5).address)
    )
    added, _ = outsider.register([client(6).address])
    assert added == 1 and outsider.is_registered(client(6).address)


def test_registered_members_claim_once(client: ClientFactory) -> None:
    registrar = Airdrop(client(FOUNDATION))
    members = [client(i).address for i in (7, 8)]
    added, _ = registrar.register(members)
    assert added == 2
    again, _ = registrar.register(members)  # already registered: skipped, not an error
    assert again == 0
    before = registrar.status()
    member = Airdrop(client(7))
    balance = client(7).balance()
    claim = member.claim()
    assert claim.account == members[0] and claim.amount == CLAIM and not claim.by_proof
    receipt = client(7).w3.eth.get_transaction_receipt(claim.tx.tx_hash)  # type: ignore[arg-type]
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert client(7).balance() == balance + CLAIM - gas  # paid 500 PVC, less its own gas
    with refused("AlreadyClaimed", members[0]):
        member.claim()
    with refused("AlreadyClaimed", members[0]):
        Airdrop(client(9)).claim(account=members[0])
    # anyone may claim for a member; the member is paid, not the caller
    other = client(8).balance()
    assert Airdrop(client(9)).claim(account=members[1]).account == members[1]
    assert client(8).balance() == other + CLAIM
    after = registrar.status(members[1])
    assert after.claim_count == before.claim_count + 2
    assert after.balance == before.balance - 2 * CLAIM
    assert after.registered and after.claimed


def test_unregistered_accounts_cannot_claim(client: ClientFactory) -> None:
    stranger = client(10).address
    with refused("NotEligible", stranger):
        Airdrop(client(10)).claim()
    assert not Airdrop(client(10)).can_claim(stranger)


def test_merkle_claims(client: ClientFactory) -> None:
    members = [client(i).address for i in (11, 12, 13)] + [_fresh_address(i) for i in range(6)]
    tree = MerkleTree(members)
    for m in members:
        assert MerkleTree.verify(tree.proof(m), tree.root, m)
    admin = Airdrop(client(FOUNDATION))
    admin.set_merkle_root(tree.root)
    assert admin.status().merkle_root == tree.root
    # a proof for someone else, a tampered proof, an empty proof, a non-member: refused
    member = Airdrop(client(11))
    me = client(11).address
    with refused("NotEligible", me):
        member.claim(tree.proof(members[1]))
    tampered = tree.proof(me)
    tampered[0] = bytes([tampered[0][0] ^ 1]) + tampered[0][1:]
    with refused("NotEligible", me):
        member.claim(tampered)
    with refused("NotEligible", me):
        member.claim([])
    outsider = client(14).address
    with refused("NotEligible", outsider):
        Airdrop(client(14)).claim(tree.proof(me))
    # the right proof pays once
    assert member.can_claim(me, tree.proof(me))
    claim = member.claim(tree.proof(me))
    assert claim.by_proof and claim.amount == CLAIM
    with refused("AlreadyClaimed", me):
        member.claim(tree.proof(me))
    # a member without any coin is claimed for by someone else
    empty = members[3]
    assert client(1).balance(empty) == 0
    Airdrop(client(12)).claim(tree.proof(empty), account=empty)
    assert client(1).balance(empty) == CLAIM
    # registered AND in the tree: still only one claim
    both = client(13).address
    admin.register([both])
    Airdrop(client(13)).claim()
    with refused("AlreadyClaimed", both):
        Airdrop(client(13)).claim(tree.proof(both))
    # clearing the root stops the proof path
    admin.set_merkle_root(bytes(32))
    with refused("NotEligible", members[4]):
        Airdrop(client(1)).claim(tree.proof(members[4]), account=members[4])


def test_merkle_tree_helpers() -> None:
    one = MerkleTree(["0x" + "11" * 20])
    assert one.root == merkle_leaf("0x" + "11" * 20) and one.proof("0x" + "11" * 20) == []
    with pytest.raises(MarketError, match="not in the tree"):
        one.proof("0x" + "22" * 20)
    with pytest.raises(MarketError, match="at least one member"):
        MerkleTree([])
    big = MerkleTree([_fresh_address(i) for i in range(13)])  # not a power of two
    for m in big.members:
        assert MerkleTree.verify(big.proof(m), big.root, m)
    assert not MerkleTree.verify(big.proof(big.members[0]), big.root, big.members[1])
    doc = big.to_json()
    assert doc["root"] == "0x" + big.root.hex() and set(doc["proofs"]) == set(big.members)


def _small_airdrop(c: ChainClient, amount: int, claims: int, value: int) -> Airdrop:
    deployer = ChainClient(c.rpc_url, c.account, abis={"TestAirdrop": AIRDROP_ABI})
    contract = deployer.deploy(
        "TestAirdrop", load_artifact("Airdrop").bytecode, c.address, amount, claims, value=value
    )
    return Airdrop(c, address=str(contract.address))


def test_constructor_refusals(client: ClientFactory) -> None:
    c = client(15)
    with refused("FundingMismatch", 3 * PVC, 2 * PVC):
        _small_airdrop(c, PVC, 3, 2 * PVC)
    with refused("ZeroAmount"):
        _small_airdrop(c, 0, 3, 0)
    with refused("ZeroAmount"):
        _small_airdrop(c, PVC, 0, 0)


def test_claims_stop_at_the_cap(client: ClientFactory) -> None:
    c = client(15)
    drop = _small_airdrop(c, PVC, 3, 3 * PVC)
    members = [_fresh_address(100 + i) for i in range(5)]
    drop.register(members)
    for m in members[:3]:
        drop.claim(account=m)
    status = drop.status()
    assert status.claim_count == 3 and status.balance == 0
    assert status.to_json()["remainingClaims"] == 0
    with refused("AirdropExhausted", 3):
        drop.claim(account=members[3])
    assert not drop.can_claim(members[3])
    assert c.balance(members[3]) == 0 and c.balance(members[0]) == PVC
