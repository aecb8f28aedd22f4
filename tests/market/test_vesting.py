"""The genesis Vesting contracts on a real dev node: installments as the table says, releases
one second before, at and after each unlock, by anyone, never twice; constructor refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from powerverse.contracts.artifacts import load_artifact
from powerverse.contracts.system import TOKENOMICS_ADDRESSES, dev_tokenomics
from powerverse.economics.allocations import (
    VESTED_NAMES,
    TokenomicsParams,
    allocation,
    vesting_installments,
)
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError
from powerverse.market.tokenomics import Release, VestingWallet, vesting_address
from powerverse.node.runner import NodeConfig
from tests.market.conftest import ClientFactory, make_factory
from tests.market.market_helpers import head_time, refused
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

PVC = 10**18
DAY = 86_400
CALLER = 3  # releases are sent by an unrelated dev account: anyone may release
GAS = 300_000
VESTING_ABI = load_artifact("Vesting").abi
TEST_ARTIFACTS = Path(__file__).resolve().parents[1] / "contracts" / "artifacts"


@pytest.fixture
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedNode]:
    """A dev node of its own per test: each test moves time far ahead."""
    n = run_threaded(
        NodeConfig(data_dir=tmp_path_factory.mktemp("vesting") / "data", dev=True, rpc_port=0)
    )
    try:
        yield n
    finally:
        stop_threaded(n)


@pytest.fixture
def client(node: ThreadedNode, dev_signers: list[LocalAccount]) -> ClientFactory:
    return make_factory(node, dev_signers)


def _genesis_params(c: ChainClient) -> TokenomicsParams:
    genesis_time = int(c.w3.eth.get_block(0)["timestamp"])
    return TokenomicsParams(listing_time=genesis_time, genesis_time=genesis_time)


def _mine_at(node: ThreadedNode, timestamp: int) -> None:
    node.result("evm_mine", timestamp)


def _views_at(node: ThreadedNode, timestamp: int) -> None:
    """Make calls and gas estimates see `timestamp`: they run in a child of the head block,
    one second after it (the head is ahead of the wall clock here)."""
    _mine_at(node, timestamp - 1)


def _release_in_block_at(node: ThreadedNode, wallet: VestingWallet, timestamp: int) -> Release:
    """Send release() so that it lands in a block with exactly `timestamp` (no gas estimate,
    which would run at the head's time)."""
    node.result("evm_setNextBlockTimestamp", timestamp)
    return wallet.release(gas=GAS)


def test_genesis_vestings_hold_the_table(client: ClientFactory) -> None:
    c = client(CALLER)
    params = _genesis_params(c)
    beneficiaries = dev_tokenomics(params.listing_time).beneficiaries
    for name in VESTED_NAMES:
        wallet = VestingWallet(c, name)
        assert wallet.address == vesting_address(name)
        expected = vesting_installments(name, params)
        status = wallet.status()
        assert list(status.installments) == expected, name
        assert status.beneficiary.lower() == "0x" + beneficiaries[name].hex()
        held = allocation(name).total - (28_000_000 * PVC if name == "presale" else 0)
        assert status.total == status.balance == held == sum(a for _, a in expected)
        assert status.released == status.releasable == status.released_count == 0
        # vestedAmount one second before and at every installment
        for i, (when, _) in enumerate(expected):
            before = sum(a for _, a in expected[:i])
            assert wallet.vested_amount(when - 1) == before, (name, i)
            assert wallet.vested_amount(when) == before + expected[i][1], (name, i)
    assert set(TOKENOMICS_ADDRESSES) - set(VESTED_NAMES) == {"block_rewards", "airdrop"}


def _release_through(
    node: ThreadedNode, client: ClientFactory, name: str, params: TokenomicsParams
) -> None:
    """Walk every installment of `name`: refused a second before, paid exactly at, refused
    again after (nothing twice), the beneficiary paid nothing else."""
    c = client(CALLER)
    wallet = VestingWallet(c, name)
    beneficiary = wallet.beneficiary()
    rows = vesting_installments(name, params)
    paid = 0
    for i, (when, amount) in enumerate(rows):
        _views_at(node, when - 1)
        assert wallet.releasable() == 0
        with refused("NothingDue", when):  # a block one second before the installment
            _release_in_block_at(node, wallet, when - 1)
        before = c.balance(beneficiary)
        release = _release_in_block_at(node, wallet, when)
        assert int(c.w3.eth.get_block(release.tx.block_number)["timestamp"]) == when
        assert release.amount == amount and release.released_count == i + 1
        assert c.balance(beneficiary) == before + amount
        paid += amount
        assert wallet.released() == paid
        assert c.balance(wallet.address) == wallet.total() - paid
        assert wallet.releasable() == 0  # one second after: nothing twice
        if i + 1 < len(rows):
            with refused("NothingDue", rows[i + 1][0]):
                wallet.release()
    with refused("FullyReleased"):
        wallet.release()
    assert paid == wallet.total() and c.balance(wallet.address) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed", "presale", "team"])
def test_release_at_each_boundary(node: ThreadedNode, client: ClientFactory, name: str) -> None:
    _release_through(node, client, name, _genesis_params(client(CALLER)))


@pytest.mark.slow
def test_late_release_pays_every_due_installment_at_once(
    node: ThreadedNode, client: ClientFactory
) -> None:
    c = client(CALLER)
    params = _genesis_params(c)
    rows = vesting_installments("foundation", params)
    wallet = VestingWallet(c, "foundation")
    beneficiary = wallet.beneficiary()
    _mine_at(node, rows[4][0] + 10)  # five installments are due
    assert wallet.releasable() == sum(a for _, a in rows[:5])
    first = VestingWallet(client(7), "foundation").release()  # another caller: anyone
    assert first.amount == sum(a for _, a in rows[:5]) and first.released_count == 5
    assert first.beneficiary == beneficiary
    with refused("NothingDue", rows[5][0]):
        wallet.release()
    _mine_at(node, rows[-1][0] + 365 * DAY)  # long after the last installment
    rest = wallet.release()
    assert rest.amount == sum(a for _, a in rows[5:]) == wallet.total() - first.amount
    assert rest.amount + first.amount == 280_000_000 * PVC
    assert c.balance(beneficiary) == 280_000_000 * PVC  # dev account 27 held nothing before
    with refused("FullyReleased"):
        wallet.release()


@pytest.mark.slow
def test_advisors_release_their_remainder_last(node: ThreadedNode, client: ClientFactory) -> None:
    c = client(CALLER)
    params = _genesis_params(c)
    rows = vesting_installments("operations_advisors", params)
    wallet = VestingWallet(c, "operations_advisors")
    _mine_at(node, rows[46][0])
    assert wallet.release().amount == sum(a for _, a in rows[:47])
    _views_at(node, rows[47][0] - 1)
    with refused("NothingDue", rows[47][0]):
        wallet.release()
    last = _release_in_block_at(node, wallet, rows[47][0])
    assert last.amount == rows[47][1] == 1_458_333_333333333333333349
    assert wallet.released() == 70_000_000 * PVC


def _deploy(
    c: ChainClient, beneficiary: str, times: list[int], amounts: list[int], value: int
) -> VestingWallet:
    deployer = ChainClient(c.rpc_url, c.account, abis={"TestVesting": VESTING_ABI})
    contract = deployer.deploy(
        "TestVesting", load_artifact("Vesting").bytecode, beneficiary, times, amounts, value=value
    )
    return VestingWallet(c, address=str(contract.address))


def test_constructor_refusals(client: ClientFactory) -> None:
    c = client(1)
    who = client(2).address
    t = head_time(c) + 1000
    with refused("ZeroAddress"):
        _deploy(c, "0x" + "00" * 20, [t], [5], 5)
    with refused("NoInstallments"):
        _deploy(c, who, [], [], 0)
    with refused("LengthMismatch", 2, 1):
        _deploy(c, who, [t, t + 1], [5], 5)
    with refused("TimesNotIncreasing", 1, t, t):
        _deploy(c, who, [t, t], [5, 5], 10)
    with refused("TimesNotIncreasing", 2, t + 5, t + 4):
        _deploy(c, who, [t, t + 5, t + 4], [1, 1, 1], 3)
    with refused("ZeroInstallment", 1):
        _deploy(c, who, [t, t + 1], [5, 0], 5)
    with refused("FundingMismatch", 10, 9):
        _deploy(c, who, [t, t + 1], [5, 5], 9)
    with refused("FundingMismatch", 10, 11):
        _deploy(c, who, [t, t + 1], [5, 5], 11)


def test_a_small_vesting_end_to_end(node: ThreadedNode, client: ClientFactory) -> None:
    c = client(1)
    beneficiary = client(2).address
    start = head_time(c) + 100
    wallet = _deploy(c, beneficiary, [start, start + 50], [3 * PVC, 4 * PVC], 7 * PVC)
    assert wallet.installments() == [(start, 3 * PVC), (start + 50, 4 * PVC)]
    assert wallet.beneficiary() == beneficiary and wallet.total() == 7 * PVC
    with pytest.raises(ContractError, match="NothingDue"):
        wallet.release()
    _mine_at(node, start + 60)
    before = c.balance(beneficiary)
    assert VestingWallet(client(9), address=wallet.address).release().amount == 7 * PVC
    assert c.balance(beneficiary) == before + 7 * PVC


def test_a_beneficiary_reentering_release_is_paid_once(
    node: ThreadedNode, client: ClientFactory
) -> None:
    """A beneficiary contract that calls release() again from its receive(): the reentrant call
    is refused (ReentrancyGuard), the beneficiary is paid exactly what was due, once."""
    attacker_artifact = load_artifact("ReentrantBeneficiary", TEST_ARTIFACTS)
    c = client(1)
    deployer = ChainClient(
        c.rpc_url, c.account, abis={"ReentrantBeneficiary": attacker_artifact.abi}
    )
    attacker = deployer.deploy("ReentrantBeneficiary", attacker_artifact.bytecode)
    start = head_time(c) + 100
    wallet = _deploy(
        c, str(attacker.address), [start, start + 50, start + 10_000], [3 * PVC, 4 * PVC, PVC],
        8 * PVC,
    )  # fmt: skip
    _mine_at(node, start + 60)
    paid = VestingWallet(client(9), address=wallet.address).release(gas=GAS)
    assert paid.amount == 7 * PVC
    view = attacker.functions
    assert c.call(view.received()) == 7 * PVC and c.call(view.payments()) == 1
    assert c.call(view.reentryAttempts()) == 1 and c.call(view.reentrySucceeded()) == 0
    reason = bytes(c.call(view.lastRevert()))
    assert reason[:4] == keccak(text="ReentrancyGuardReentrantCall()")[:4]
    assert wallet.released() == 7 * PVC
    assert c.balance(wallet.address) == PVC  # the last installment is still there
