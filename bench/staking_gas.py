"""Gas used by the user-facing Staking and DIDRegistry operations (issue 4), on a real dev node.

Starts `pv node --dev` (or uses --rpc-url), runs each operation once through the SDK and prints
the receipt's gasUsed; with --markdown, the table for docs/benchmarks.md.

    .venv/bin/python bench/staking_gas.py                # start a dev node, print a table
    .venv/bin/python bench/staking_gas.py --markdown     # the docs/benchmarks.md table
    .venv/bin/python bench/staking_gas.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `powerverse` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from eth_account import Account

from bench._procs import NodeProcess, free_port, ours_command, run_guarded
from powerverse.consensus.messages import Chain, Credential, Step, Vote, encode
from powerverse.crypto.keys import dev_accounts
from powerverse.market.client import ChainClient
from powerverse.market.did import AUTHENTICATION, KEY_AGREEMENT, DidRegistry, PublicKey, Service
from powerverse.market.staking import Staking
from powerverse.node.runner import dev_validator

PVC = 10**18
DAY = 86_400


class GasMeter:
    """Wraps a client so that every receipt's gasUsed is recorded under the current label."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int]] = []

    def measure(
        self, client: ChainClient, contract: str, label: str, run: Callable[[], Any]
    ) -> None:
        """Run one operation (exactly one transaction) and record its gas."""
        sent: list[dict[str, Any]] = []
        original = client.transact

        def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
            receipt = original(*args, **kwargs)
            sent.append(receipt)
            return receipt

        client.transact = recording  # type: ignore[method-assign]
        try:
            run()
        finally:
            client.transact = original  # type: ignore[method-assign]
        (receipt,) = sent
        self.rows.append((contract, label, int(receipt["gasUsed"])))


def measure_all(url: str) -> list[tuple[str, str, int]]:
    """Every user-facing operation once, in a realistic order."""
    signers = [Account.from_key(a.private_key) for a in dev_accounts(count=6)]
    clients = [ChainClient(url, s) for s in signers]
    meter = GasMeter()
    foundation, validator, delegator = (Staking(clients[i]) for i in (0, 1, 2))
    v_addr = validator.client.address

    def m(s: Staking, label: str, run: Callable[[], Any]) -> None:
        meter.measure(s.client, "Staking", label, run)

    key = b"\xbe" * 32
    m(
        validator,
        "registerValidator (first self-stake)",
        lambda: validator.register(key, 500, 2 * PVC),
    )
    m(delegator, "delegate (first delegation)", lambda: delegator.delegate(v_addr, 3 * PVC))
    m(delegator, "delegate (top-up)", lambda: delegator.delegate(v_addr, PVC))
    m(validator, "delegate (add self-stake)", lambda: validator.delegate(v_addr, PVC))
    m(delegator, "undelegate (first entry)", lambda: delegator.undelegate(v_addr, PVC))
    m(delegator, "undelegate (second entry)", lambda: delegator.undelegate(v_addr, PVC))
    clients[0].w3.provider.make_request("evm_increaseTime", [DAY + 60])  # type: ignore[arg-type]
    clients[0].w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    m(delegator, "withdraw (2 matured entries)", delegator.withdraw)
    m(foundation, "slash (SLASHER_ROLE)", lambda: foundation.slash(key, b"\x01" * 32, 500))
    clients[0].w3.provider.make_request("evm_increaseTime", [DAY])  # type: ignore[arg-type]
    clients[0].w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    m(validator, "unjail", validator.unjail)
    m(foundation, "jail (SLASHER_ROLE)", lambda: foundation.jail(key, "downtime"))
    m(foundation, "withdraw (treasury's slashed stake)", foundation.withdraw)
    w3 = clients[0].w3
    consensus = dev_validator().consensus
    head = int(w3.eth.block_number)
    genesis = bytes(w3.eth.get_block(0)["hash"])
    vote = Vote(
        head,
        0,
        Step.PRECOMMIT,
        bytes(w3.eth.get_block(head)["hash"]),
        consensus.public_key,
        Credential(vrf_hash=b"\x07" * 64, proof=b"\x08" * 80, weight=1),
    )
    signed = replace(vote, signature=consensus.sign(vote.signing_bytes(Chain(31337, genesis))))
    m(delegator, "proveLiveness (one precommit)", lambda: delegator.prove_liveness(encode(signed)))
    foundation.set_liveness_window(16, "bench")
    for _ in range(17):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    m(delegator, "reportDowntime (jails)", lambda: delegator.report_downtime(consensus.public_key))

    did = DidRegistry(clients[3])
    me = did.own_did()

    def d(label: str, run: Callable[[], Any]) -> None:
        meter.measure(did.client, "DIDRegistry", label, run)

    ed = PublicKey("key-1", "Ed25519VerificationKey2020", b"\x11" * 32, AUTHENTICATION)
    d("addKey (Ed25519, 32 bytes)", lambda: did.add_key(me, ed))
    x = PublicKey("enc-1", "X25519KeyAgreementKey2019", b"\x22" * 32, KEY_AGREEMENT)
    d("addKey (second key)", lambda: did.add_key(me, x))
    agent = Service("agent", "PowerVerseAgent", "https://agent.example.org:8443/v1")
    d("addService", lambda: did.add_service(me, agent))
    helper = clients[4].address
    d("addDelegate", lambda: did.add_delegate(me, "vmAccess", helper, 4_000_000_000))
    d("revokeDelegate", lambda: did.revoke_delegate(me, "vmAccess", helper))
    d("removeService", lambda: did.remove_service(me, "agent"))
    d("removeKey", lambda: did.remove_key(me, "enc-1"))
    d("changeController", lambda: did.change_controller(me, clients[5].address))
    other = DidRegistry(clients[5])
    meter.measure(other.client, "DIDRegistry", "deactivate", lambda: other.deactivate(me))
    return meter.rows


def render_markdown(rows: Sequence[tuple[str, str, int]]) -> str:
    """The table for docs/benchmarks.md."""
    lines = ["| contract | operation | gas used |", "|---|---|---:|"]
    lines += [f"| `{c}` | {label} | {gas:,} |" for c, label, gas in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", help="Use this dev node instead of starting one.")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    parser.add_argument("--markdown", action="store_true", help="Print a markdown table.")
    args = parser.parse_args(argv)

    def run() -> int:
        if args.rpc_url:
            rows = measure_all(args.rpc_url)
        else:
            port = free_port()
            with NodeProcess("ours", lambda d: ours_command(port, d / "data"), port) as node:
                rows = measure_all(node.url)
        if args.json:
            doc = [{"contract": c, "operation": op, "gasUsed": g} for c, op, g in rows]
            print(json.dumps({"gas": doc}, indent=2))
        elif args.markdown:
            print(render_markdown(rows))
        else:
            width = max(len(op) for _, op, _ in rows)
            for c, op, g in rows:
                print(f"{c:12} {op:{width}} {g:>9,}")
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
