"""ResourceNFT on a real dev node: registration, verification, scoring, rental lock, refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils.crypto import keccak

from powerverse.contracts.system import MARKET, ORDERS
from powerverse.market.admin import Admin, role_id
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo
from powerverse.market.rentals import MarketTotals, Rentals, RentalState
from powerverse.market.resources import (
    Gpu,
    Location,
    PerformPara,
    Ram,
    RentalStatus,
    Resources,
    VerificationStatus,
    Weights,
)
from tests.market.market_helpers import (
    EVIDENCE,
    FOUNDATION,
    PARA,
    SHANGHAI,
    ClientFactory,
    list_resource,
    refused,
    register_resource,
)

ZERO = "0x" + "00" * 20


def expected_points(para: PerformPara, w: Weights) -> int:
    """The documented formula, computed independently of the contract."""
    gpus = para.gpu.count
    total = (
        para.cpu.clock_speed_mhz * w.cpu_clock_speed
        + para.cpu.cores * w.cpu_cores
        + para.gpu.memory_mib * gpus * w.gpu_memory
        + para.gpu.cuda_cores * gpus * w.gpu_cuda_cores
        + gpus * w.gpu_count
        + para.ram.size_mib * w.ram_size
        + para.ram.frequency_mhz * w.ram_frequency
        + para.disk.size_gb * w.disk_size
        + para.disk.read_mbps * w.disk_read_speed
        + para.disk.write_mbps * w.disk_write_speed
    )
    return total // 1000


def test_register_mints_an_unverified_token_with_every_field(client: ClientFactory) -> None:
    nft = Resources(client(1))
    before = nft.total_registered()
    agent = client(7).address
    reg = nft.register(
        "ipfs://bafy-gpu-box", PARA, SHANGHAI, agent_endpoint="https://a.example:7443", agent=agent
    )
    assert reg.token_id == before + 1 == nft.total_registered()
    assert reg.tx.gas_used > 0
    res = nft.get(reg.token_id)
    assert res.owner == client(1).address
    assert res.metadata == "ipfs://bafy-gpu-box"
    assert res.perform_para == PARA
    assert res.location == SHANGHAI
    assert (res.location.latitude, res.location.longitude) == (31.2304, 121.4737)
    assert res.agent_endpoint == "https://a.example:7443"
    assert res.agent == agent
    assert res.perform_points == 0
    assert res.verification.status is VerificationStatus.PENDING
    assert not res.verified and not nft.is_verified(reg.token_id)
    assert res.rental.status is RentalStatus.AVAILABLE and res.rental.lessee == ZERO
    assert res.registered_at > 0
    uri = client(1).call(nft.contract.functions.tokenURI(reg.token_id))
    assert uri == "ipfs://bafy-gpu-box"
    assert res.to_json()["verification"]["status"] == "pending"


def test_verify_scores_with_the_onchain_weights(client: ClientFactory) -> None:
    token = register_resource(client(1), None)
    verifier = Resources(client(FOUNDATION))
    result = verifier.verify(token, EVIDENCE)
    weights = verifier.weights()
    assert result.perform_points == expected_points(PARA, weights) == verifier.score(PARA)
    res = verifier.get(token)
    assert res.verified and res.perform_points == result.perform_points
    assert res.verification.verifier == client(FOUNDATION).address
    assert res.verification.evidence_hash == EVIDENCE
    assert res.verification.at > 0


def test_gpu_figures_count_every_card(client: ClientFactory) -> None:
    nft = Resources(client(1))
    one = replace(PARA, gpu=replace(PARA.gpu, count=1))
    none = replace(PARA, gpu=Gpu())
    w = nft.weights()
    per_card = (
        PARA.gpu.memory_mib * w.gpu_memory + PARA.gpu.cuda_cores * w.gpu_cuda_cores + w.gpu_count
    )
    assert nft.score(one) == expected_points(one, w)
    assert nft.score(none) == expected_points(none, w)
    assert nft.score(PARA) > nft.score(one) > nft.score(none)
    assert expected_points(PARA, w) - expected_points(one, w) in {
        per_card // 1000,
        per_card // 1000 + 1,
    }


def test_only_verifiers_verify_and_evidence_is_required(client: ClientFactory) -> None:
    token = register_resource(client(1), None)
    with refused(
        "AccessControlUnauthorizedAccount", neededRole="0x" + keccak(text="VERIFIER_ROLE").hex()
    ):
        Resources(client(1)).verify(token, EVIDENCE)
    with refused("EmptyEvidence"):
        Resources(client(FOUNDATION)).verify(token, b"\x00" * 32)
    with refused("ERC721NonexistentToken", tokenId=10**9):
        Resources(client(FOUNDATION)).verify(10**9, EVIDENCE)


def test_a_granted_verifier_can_verify(client: ClientFactory) -> None:
    Admin(client(FOUNDATION)).grant_role("ResourceNFT", "VERIFIER_ROLE", client(8).address)
    token = register_resource(client(1), None)
    assert Resources(client(8)).verify(token, EVIDENCE).perform_points > 0
    assert Resources(client(8)).get(token).verification.verifier == client(8).address


def test_flag_withdraws_certification_and_reverify_restores_it(client: ClientFactory) -> None:
    token = register_resource(client(1), client(FOUNDATION))
    verifier = Resources(client(FOUNDATION))
    verifier.flag(token, keccak(b"failed benchmark"), "GPU count does not match the benchmark")
    res = verifier.get(token)
    assert res.verification.status is VerificationStatus.FLAGGED
    assert res.perform_points == 0 and not verifier.is_verified(token)
    with refused("EmptyField", field="reason"):
        verifier.flag(token, EVIDENCE, "")
    with refused("AccessControlUnauthorizedAccount"):
        Resources(client(1)).flag(token, EVIDENCE, "mine")
    points = verifier.verify(token, keccak(b"new evidence")).perform_points
    assert points > 0 and verifier.get(token).verified


def test_weights_change_only_by_governance_and_rescore_applies_them(client: ClientFactory) -> None:
    gov = Resources(client(FOUNDATION))
    token = register_resource(client(1), client(FOUNDATION))
    old = gov.weights()
    doubled = Weights(**{k: 2 * v for k, v in vars(old).items()})
    with refused(
        "AccessControlUnauthorizedAccount", neededRole="0x" + keccak(text="GOVERNANCE_ROLE").hex()
    ):
        Resources(client(1)).set_weights(doubled)
    before = gov.get(token).perform_points
    tx = gov.set_weights(doubled)
    (event,) = client(FOUNDATION).events(
        gov.contract,
        "WeightsUpdated",
        client(FOUNDATION).w3.eth.get_transaction_receipt(tx.tx_hash),
    )
    assert event["by"] == client(FOUNDATION).address
    assert gov.weights() == doubled
    assert gov.get(token).perform_points == before  # stored until rescored
    Resources(client(9)).rescore(token)  # anyone
    assert gov.get(token).perform_points == expected_points(PARA, doubled)
    gov.set_weights(old)
    Resources(client(9)).rescore(token)
    assert gov.get(token).perform_points == before
    pending = register_resource(client(1), None)
    with refused("ResourceNotVerified", tokenId=pending):
        gov.rescore(pending)


def test_new_parameters_need_verifying_again(client: ClientFactory) -> None:
    token = register_resource(client(1), client(FOUNDATION))
    nft = Resources(client(1))
    bigger = replace(PARA, ram=Ram(size_mib=131_072, frequency_mhz=3_200))
    with refused("NotResourceOwner", tokenId=token, caller=client(2).address):
        Resources(client(2)).update_perform_para(token, bigger)
    nft.update_perform_para(token, bigger)
    res = nft.get(token)
    assert res.perform_para == bigger
    assert res.verification.status is VerificationStatus.PENDING and res.perform_points == 0


def test_owner_updates_metadata_location_and_agent(client: ClientFactory) -> None:
    token = register_resource(client(1), None)
    nft = Resources(client(1))
    nft.set_metadata(token, "ipfs://bafy-v2")
    paris = Location.from_degrees("eu-west", 48.8566, 2.3522)
    nft.set_location(token, paris)
    nft.set_agent(token, "https://agent2.example", client(7).address)
    res = nft.get(token)
    assert (res.metadata, res.location, res.agent_endpoint, res.agent) == (
        "ipfs://bafy-v2",
        paris,
        "https://agent2.example",
        client(7).address,
    )
    other = Resources(client(2))
    for call in (
        lambda: other.set_metadata(token, "x"),
        lambda: other.set_location(token, paris),
        lambda: other.set_agent(token, "x", None),
    ):
        with refused("NotResourceOwner"):
            call()


@pytest.mark.parametrize(
    ("para", "field"),
    [
        (replace(PARA, cpu=replace(PARA.cpu, cores=0)), "cpu"),
        (replace(PARA, cpu=replace(PARA.cpu, clock_speed_mhz=0)), "cpu"),
        (replace(PARA, gpu=replace(PARA.gpu, memory_mib=0)), "gpu"),
        (replace(PARA, gpu=replace(PARA.gpu, count=0)), "gpu"),
        (replace(PARA, ram=replace(PARA.ram, size_mib=0)), "ram"),
        (replace(PARA, disk=replace(PARA.disk, size_gb=0)), "disk"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    client: ClientFactory, para: PerformPara, field: str
) -> None:
    with refused("InvalidPerformPara", field=field):
        Resources(client(1)).register("ipfs://x", para, SHANGHAI)


def test_bad_location_and_strings_are_refused(client: ClientFactory) -> None:
    nft = Resources(client(1))
    with refused("InvalidCoordinates", latitude=90_000_001, longitude=0):
        nft.register("ipfs://x", PARA, Location(region="x", latitude_e6=90_000_001, longitude_e6=0))
    with refused("InvalidCoordinates"):
        nft.register(
            "ipfs://x", PARA, Location(region="x", latitude_e6=0, longitude_e6=-180_000_001)
        )
    with refused("EmptyField", field="metadata"):
        nft.register("", PARA, SHANGHAI)
    with refused("StringTooLong", field="metadata", length=257, max=256):
        nft.register("m" * 257, PARA, SHANGHAI)
    with refused("StringTooLong", field="cpu.model"):
        nft.register("ipfs://x", replace(PARA, cpu=replace(PARA.cpu, model="c" * 65)), SHANGHAI)


def test_rental_info_is_written_only_by_market_roles(client: ClientFactory) -> None:
    nft = Resources(client(FOUNDATION))
    admin = Admin(client(FOUNDATION))
    assert admin.has_role("ResourceNFT", "MARKET_ROLE", "0x" + MARKET.hex())
    assert admin.has_role("ResourceNFT", "MARKET_ROLE", "0x" + ORDERS.hex())
    token = register_resource(client(1), client(FOUNDATION))
    fn = nft.contract.functions
    with refused(
        "AccessControlUnauthorizedAccount", neededRole="0x" + role_id("MARKET_ROLE").hex()
    ):
        client(1).transact(fn.markRented(token, client(2).address, 1, 1, 0, 1))
    # A contract holding MARKET_ROLE (stand-in: account 11) locks the token; others cannot free it.
    admin.grant_role("ResourceNFT", "MARKET_ROLE", client(11).address)
    admin.grant_role("ResourceNFT", "MARKET_ROLE", client(12).address)
    client(11).transact(fn.markRented(token, client(2).address, 5, 3, 100, 200))
    info = nft.rental_info(token)
    assert (info.status, info.lessee, info.price_per_day, info.period_days) == (
        RentalStatus.RENTED,
        client(2).address,
        5,
        3,
    )
    assert (info.start, info.end, info.rented_by) == (100, 200, client(11).address)
    with refused("ResourceAlreadyRented", tokenId=token):
        client(12).transact(fn.markRented(token, client(3).address, 5, 3, 100, 200))
    with refused("NotRentalHolder", tokenId=token, caller=client(12).address):
        client(12).transact(fn.markAvailable(token))
    with refused("InvalidRentalTerm"):
        client(11).transact(fn.updateRentalTerm(token, 1, 300, 200))
    # Market sees the lock of another holder.
    list_resource(client(1), token)
    with refused("ResourceBusy", tokenId=token):
        Rentals(client(2)).rent(token, 1)
    # A rented token cannot move, and its parameters cannot change.
    with refused("TransferOfRentedResource", tokenId=token):
        Resources(client(1)).transfer(token, client(3).address)
    with refused("ResourceAlreadyRented", tokenId=token):
        Resources(client(1)).update_perform_para(token, PARA)
    client(11).transact(fn.markAvailable(token))
    assert nft.rental_info(token).status is RentalStatus.AVAILABLE
    with refused("ResourceNotRented", tokenId=token):
        client(11).transact(fn.markAvailable(token))
    Resources(client(1)).transfer(token, client(3).address)
    assert nft.owner_of(token) == client(3).address
    unverified = register_resource(client(1), None)
    with refused("ResourceNotVerified", tokenId=unverified):
        client(11).transact(fn.markRented(unverified, client(2).address, 1, 1, 0, 1))


def test_blocked_accounts_cannot_register(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    admin.freeze_account(client(13).address, "KYC review")
    with refused("AccountBlocked", account=client(13).address):
        register_resource(client(13), None)
    admin.unfreeze_account(client(13).address, "KYC passed")
    assert register_resource(client(13), None) > 0


# ---------------------------------------------------------------------- SDK value types (no node)


def test_sdk_value_types_round_trip() -> None:
    assert PerformPara.from_abi(PARA.to_abi()) == PARA
    loc = Location.from_degrees("eu-west", -33.8688, 151.2093)
    assert (loc.latitude_e6, loc.longitude_e6) == (-33_868_800, 151_209_300)
    assert (loc.latitude, loc.longitude) == (-33.8688, 151.2093)
    assert loc.to_abi() == ("eu-west", -33_868_800, 151_209_300)
    assert role_id("DEFAULT_ADMIN_ROLE") == b"\x00" * 32
    assert role_id("VERIFIER_ROLE") == keccak(text="VERIFIER_ROLE")
    tx = TxInfo.from_receipt({"transactionHash": b"\x01" * 32, "blockNumber": 7, "gasUsed": 9})
    assert tx == TxInfo(tx_hash="0x" + "01" * 32, block_number=7, gas_used=9)
    assert RentalState.SETTLED.ended and not RentalState.DISPUTED.ended
    assert MarketTotals(escrowed=2, owed=3, balance=5).balanced
    assert not MarketTotals(escrowed=2, owed=3, balance=6).balanced


def test_sdk_refuses_bad_input_before_sending(client: ClientFactory) -> None:
    with pytest.raises(MarketError, match="32 bytes"):
        Resources(client(FOUNDATION)).verify(1, b"\x01" * 31)
    with pytest.raises(MarketError, match="at least one day"):
        Rentals(client(4)).rent(1, 0)
