"""`pv provider`: turn this machine into verified, rentable VMs (PowerVerse Infra).

    pv provider init --region cn-east --lat 31.2 --lon 121.5 --tiny-image --price 1.5
    pv provider register --dev-account 3        # mint (and list, once verified)
    pv provider up --dev-account 3              # the agent daemon
    pv provider status --json

Exit status: 0 done, 1 refused or failed (the reason is printed), 2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from powerverse.cli.chainfmt import attempt, done, parse_amount
from powerverse.cli.chainopts import (
    DevAccountOption,
    FromOption,
    JsonOption,
    KeystoreDirOption,
    PasswordFileOption,
    connect,
    signer_of,
)
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.infra.config import (
    ApiConfig,
    ImageConfig,
    LocationConfig,
    ProviderConfig,
    ResourceConfig,
    load_config,
    save_config,
)
from powerverse.infra.exceptions import InfraError

app = typer.Typer(
    help="Provide compute: discover and benchmark this machine, register it, run the agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DirOption = Annotated[
    Path, typer.Option("--dir", help="The provider directory.", envvar="PV_PROVIDER_DIR")
]
DEFAULT_DIR = Path("provider")
EVIDENCE_FILE = "evidence.json"
YEAR = 365 * 86_400


def _load(directory: Path) -> ProviderConfig:
    try:
        return load_config(directory)
    except InfraError as exc:
        fail(str(exc), EXIT_USAGE)


@app.command("init")
def init(
    directory: DirOption = DEFAULT_DIR,
    rpc_url: Annotated[str, typer.Option("--rpc-url", envvar="PV_RPC_URL")] = (
        "http://127.0.0.1:8545"
    ),
    region: Annotated[str, typer.Option("--region", help="Region name, e.g. cn-east.")] = "",
    lat: Annotated[float, typer.Option("--lat", min=-90, max=90)] = 0.0,
    lon: Annotated[float, typer.Option("--lon", min=-180, max=180)] = 0.0,
    name: Annotated[str, typer.Option("--name", help="The resource's name.")] = "vm",
    vcpus: Annotated[int, typer.Option("--vcpus", min=1)] = 1,
    max_vcpus: Annotated[int | None, typer.Option("--max-vcpus", min=1)] = None,
    memory_mib: Annotated[int, typer.Option("--memory-mib", min=64)] = 256,
    price: Annotated[str, typer.Option("--price", help="PVC per day.")] = "1",
    tiny_image: Annotated[
        bool, typer.Option("--tiny-image", help="Boot a tiny busybox+dropbear image (demos).")
    ] = False,
    disk_image: Annotated[
        Path | None, typer.Option("--disk-image", help="qcow2 base image.")
    ] = None,
    take_tasks: Annotated[bool, typer.Option("--take-tasks", help="Also run task orders.")] = False,
    api_port: Annotated[int, typer.Option("--api-port", min=0, max=65535)] = 8700,
    quick: Annotated[
        bool, typer.Option("--quick", help="Short benchmarks (tests, demos).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Discover and benchmark this machine; write provider.yaml and signed evidence."""
    from powerverse.infra.attestation import BenchmarkReport, sign_report
    from powerverse.infra.benchmark import run_benchmarks
    from powerverse.infra.daemon import load_or_create_agent_key
    from powerverse.infra.hardware import discover
    from powerverse.infra.scoring import perform_para
    from powerverse.infra.tinyimage import build_tiny_image

    if (disk_image is None) == (not tiny_image):
        fail("give exactly one of --tiny-image or --disk-image FILE", EXIT_USAGE)
    parse_amount(price)  # exits 2 on a bad amount
    directory = directory.resolve()
    location = {"region": region, "latitude": lat, "longitude": lon}
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=Console(stderr=True), disable=json_output, transient=True,
    ) as progress:  # fmt: skip
        step = progress.add_task("discovering hardware")
        hw = discover(location)
        if tiny_image:
            progress.update(step, description="building the tiny image")
            try:
                tiny = build_tiny_image(directory / "images")
            except InfraError as exc:
                fail(str(exc))
            image = ImageConfig(
                kernel=str(tiny.kernel), initrd=str(tiny.initrd), cmdline=tiny.cmdline
            )
        else:
            assert disk_image is not None
            image = ImageConfig(disk=str(disk_image.resolve()))
        seed = secrets.token_bytes(16)
        sizes = {"cpu_rounds": 50_000, "memory_mib": 16, "disk_mib": 16} if quick else {}
        results = run_benchmarks(
            seed,
            disk_dir=directory,
            progress=lambda what: progress.update(step, description=f"benchmarking {what}"),
            **sizes,  # type: ignore[arg-type]
        )
    agent = load_or_create_agent_key(directory)
    para = perform_para(hw, results, vcpus=vcpus, memory_mib=memory_mib)
    report = sign_report(
        agent,
        BenchmarkReport(
            hardware=hw,
            results=results,
            claimed=para,
            agent=agent.address,
            token_id=None,
            seed=seed.hex(),
            timestamp=int(time.time()),
        ),
    )
    (directory / EVIDENCE_FILE).write_text(json.dumps(report.to_json(), indent=1))
    config = ProviderConfig(
        rpc_url=rpc_url,
        location=LocationConfig(region=region, latitude=lat, longitude=lon),
        api=ApiConfig(port=api_port),
        resources=(
            ResourceConfig(
                name=name, vcpus=vcpus, max_vcpus=max_vcpus, memory_mib=memory_mib, image=image,
                price_per_day=price, take_tasks=take_tasks,
            ),
        ),
    )  # fmt: skip
    path = save_config(directory, config)
    doc = {
        "dir": str(directory),
        "config": str(path),
        "agent": agent.address,
        "evidenceHash": "0x" + report.evidence_hash.hex(),
        "performPara": _para_json(para),
        "benchmarks": results.to_json(),
    }
    done(
        json_output,
        doc,
        f"wrote {path}\nagent {agent.address}; evidence hash 0x{report.evidence_hash.hex()}\n"
        "next: pv provider register",
    )


def _para_json(para: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(para)


@app.command("register")
def register(
    directory: DirOption = DEFAULT_DIR,
    from_: FromOption = None,
    keystore: KeystoreDirOption = None,
    password_file: PasswordFileOption = None,
    dev_account: DevAccountOption = None,
    fund_agent: Annotated[
        str, typer.Option("--fund-agent", help="PVC to send the agent for gas when it has less.")
    ] = "1",
    json_output: JsonOption = False,
) -> None:
    """Mint each resource's NFT (agent set), fund the agent, and list what is verified."""
    from powerverse.infra.attestation import SignedReport
    from powerverse.infra.daemon import load_or_create_agent_key
    from powerverse.market.rentals import Rentals
    from powerverse.market.resources import Location, Resources

    directory = directory.resolve()
    config = _load(directory)
    client = connect(
        config.rpc_url, from_=from_, keystore=keystore, password_file=password_file,
        dev_account=dev_account,
    )  # fmt: skip
    agent = load_or_create_agent_key(directory)
    try:
        report = SignedReport.from_json((directory / EVIDENCE_FILE).read_bytes())
        report.verify(agent=agent.address)
    except (OSError, InfraError) as exc:
        fail(f"no usable {EVIDENCE_FILE} in {directory} ({exc}): run `pv provider init`")
    para = report.report.claimed
    resources, rentals = Resources(client), Rentals(client)
    endpoint = f"http://{config.api.host}:{config.api.port}"
    location = Location.from_degrees(
        config.location.region, config.location.latitude, config.location.longitude
    )
    metadata = "pv-evidence:0x" + report.evidence_hash.hex()

    def mint() -> Any:
        return resources.register(
            metadata, para, location, agent_endpoint=endpoint, agent=agent.address
        )

    out = []
    for resource in config.resources:
        token = resource.token_id
        if token is None:
            token = attempt(json_output, mint).token_id
            config = config.with_token(resource.name, token)
            save_config(directory, config)
        info = resources.get(token)
        listed = False
        if info.verified:
            if rentals.listing(token).status.name == "NONE":
                attempt(json_output, lambda t=token, r=resource: _list(client, rentals, t, r))
            listed = True
        out.append({"name": resource.name, "tokenId": token, "verified": info.verified,
                    "listed": listed})  # fmt: skip
    funding = parse_amount(fund_agent)
    if funding and client.balance(agent.address) < funding:
        client.send_value(agent.address, funding)
    doc = {"agent": agent.address, "evidenceHash": "0x" + report.evidence_hash.hex(),
           "resources": out}  # fmt: skip
    lines = [
        f"{r['name']}: token {r['tokenId']}, "
        + ("listed" if r["listed"] else "awaiting verification: a verifier runs "
           f"`pv resource verify {r['tokenId']} --evidence-hash {doc['evidenceHash']}`")
        for r in out
    ]  # fmt: skip
    done(json_output, doc, "\n".join(lines))


def _list(client: Any, rentals: Any, token: int, resource: ResourceConfig) -> Any:
    now = int(client.w3.eth.get_block("latest")["timestamp"])
    return rentals.list_resource(
        token,
        price_per_day=resource.price_wei,
        available_from=now,
        available_until=now + YEAR,
        min_days=resource.min_days,
        max_days=resource.max_days,
    )


@app.command("up")
def up(
    directory: DirOption = DEFAULT_DIR,
    from_: FromOption = None,
    keystore: KeystoreDirOption = None,
    password_file: PasswordFileOption = None,
    dev_account: DevAccountOption = None,
    accel: Annotated[str, typer.Option("--accel", help="auto, kvm or tcg.")] = "auto",
) -> None:
    """Run the agent: serve rentals and tasks of this machine's resources until stopped.

    The provider's key (--from/--keystore or --dev-account) is needed only to take tasks.
    """
    from powerverse.infra.accel import detect_accel
    from powerverse.infra.daemon import Daemon
    from powerverse.infra.tinyimage import build_tiny_image

    if accel not in ("auto", "kvm", "tcg"):
        fail("--accel is auto, kvm or tcg", EXIT_USAGE)
    directory = directory.resolve()
    config = _load(directory)
    provider = signer_of(from_, keystore, password_file, dev_account)
    try:
        if accel == "auto":
            accel = detect_accel(directory / "accel.json", build_tiny_image(directory / "images"))
        daemon = Daemon(directory, config, provider=provider, accel=accel)
    except InfraError as exc:
        fail(str(exc))
    logging.getLogger("powerverse").setLevel(logging.INFO)
    Console(stderr=True).print(
        f"agent {daemon.account.address} ({accel}) serving tokens "
        f"{', '.join(map(str, daemon.identity.resources))}; API on "
        f"http://{config.api.host}:{config.api.port}"
    )
    daemon.run()


@app.command("status")
def status(directory: DirOption = DEFAULT_DIR, json_output: JsonOption = False) -> None:
    """Leases, tasks and the latest agent journal, from the agent's state."""
    from powerverse.infra.state import AgentState

    directory = directory.resolve()
    config = _load(directory)
    state = AgentState(directory / "agent.sqlite")
    try:
        doc: dict[str, Any] = {
            "resources": [{"name": r.name, "tokenId": r.token_id} for r in config.resources],
            "leases": [
                {
                    "rentalId": x.rental_id,
                    "tokenId": x.token_id,
                    "consumer": x.consumer,
                    "state": x.state.value,
                    "instanceId": x.instance_id,
                    "sshPort": x.ssh_port,
                    "end": x.end,
                    "note": x.note,
                }
                for x in state.leases()
            ],
            "tasks": [
                {
                    "orderId": t.order_id,
                    "tokenId": t.token_id,
                    "state": t.state.value,
                    "resultCid": t.result_cid,
                    "note": t.note,
                }
                for t in state.tasks()
            ],
            "journal": [{"at": a, "kind": k, "message": m} for a, k, m in state.journal(20)],
        }
    finally:
        state.close()
    if json_output:
        print_json(doc)
        return
    console = Console(highlight=False)
    for lease in doc["leases"]:
        console.print(
            f"rental {lease['rentalId']}: {lease['state']} ({lease['instanceId']}, "
            f"ssh port {lease['sshPort']})"
        )
    for task in doc["tasks"]:
        console.print(f"task {task['orderId']}: {task['state']} {task['resultCid']}")
    for entry in doc["journal"]:
        console.print(f"  {time.strftime('%H:%M:%S', time.localtime(entry['at']))} "
                      f"{entry['kind']}: {entry['message']}")  # fmt: skip
