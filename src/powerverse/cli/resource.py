"""`pv resource`: register virtual resources as ResourceNFT tokens, verify, score and read them.

Parameters use the contract's units: MHz for clock speeds and RAM frequency, MiB for GPU
memory and RAM, GB for disks, MB/s for disk speeds, degrees for coordinates. Exit status: 0
done, 1 refused (the contract's error name is printed, or the JSON document with ``--json``),
2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_utils.crypto import keccak
from rich.console import Console
from rich.table import Table

from powerverse.cli.chainfmt import (
    attempt,
    done,
    format_pvc,
    parse_account,
    parse_hash32,
    tx_json,
)
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_UNREACHABLE, EXIT_USAGE, fail, option_bundle, print_json
from powerverse.market.receipts import TxInfo
from powerverse.market.resources import (
    Cpu,
    Disk,
    Gpu,
    Location,
    PerformPara,
    Ram,
    Resource,
    Resources,
    Weights,
)

app = typer.Typer(
    help="Resource NFTs: register, update, verify, flag, score, and read virtual resources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TokenArg = Annotated[int, typer.Argument(min=1, help="The resource's token id.")]
_N = dict(min=0)
CpuModel = Annotated[str | None, typer.Option("--cpu-model", help="e.g. 'AMD EPYC 7763'.")]
CpuMhz = Annotated[int | None, typer.Option("--cpu-mhz", **_N, help="CPU clock speed, MHz.")]
CpuCores = Annotated[int | None, typer.Option("--cpu-cores", **_N, help="CPU cores.")]
GpuModel = Annotated[str | None, typer.Option("--gpu-model", help="e.g. 'NVIDIA H100'.")]
GpuMib = Annotated[int | None, typer.Option("--gpu-memory-mib", **_N, help="Per card, MiB.")]
GpuCuda = Annotated[int | None, typer.Option("--gpu-cuda-cores", **_N, help="Per card.")]
GpuCount = Annotated[int | None, typer.Option("--gpu-count", **_N, help="Cards (0: none).")]
RamMib = Annotated[int | None, typer.Option("--ram-mib", **_N, help="Main memory, MiB.")]
RamMhz = Annotated[int | None, typer.Option("--ram-mhz", **_N, help="Memory frequency, MHz.")]
DiskType = Annotated[str | None, typer.Option("--disk-type", help="nvme, ssd, hdd, ...")]
DiskGb = Annotated[int | None, typer.Option("--disk-gb", **_N, help="Disk size, GB.")]
DiskRead = Annotated[int | None, typer.Option("--disk-read-mbps", **_N, help="MB/s.")]
DiskWrite = Annotated[int | None, typer.Option("--disk-write-mbps", **_N, help="MB/s.")]
Region = Annotated[str | None, typer.Option("--region", help="Region name, e.g. cn-east.")]
Lat = Annotated[float | None, typer.Option("--lat", min=-90, max=90, help="Latitude, degrees.")]
Lon = Annotated[float | None, typer.Option("--lon", min=-180, max=180, help="Longitude, degrees.")]
EvidenceHash = Annotated[
    str | None, typer.Option("--evidence-hash", help="32-byte hash of the evidence (hex).")
]
EvidenceFile = Annotated[
    Path | None,
    typer.Option(
        "--evidence-file",
        help="An agent's signed benchmark report (its evidence hash is used; the signature is "
        "checked), or any file (its keccak256 is used).",
    ),
]


_resources = functools.partial(sdk, Resources)
"""The SDK object for a command: node, signer, and whether one is needed."""


@dataclass(frozen=True)
class _Hardware:
    """The --cpu-*, --gpu-*, --ram-* and --disk-* options (None: not given)."""

    cpu_model: CpuModel = None
    cpu_mhz: CpuMhz = None
    cpu_cores: CpuCores = None
    gpu_model: GpuModel = None
    gpu_mib: GpuMib = None
    gpu_cuda: GpuCuda = None
    gpu_count: GpuCount = None
    ram_mib: RamMib = None
    ram_mhz: RamMhz = None
    disk_type: DiskType = None
    disk_gb: DiskGb = None
    disk_read: DiskRead = None
    disk_write: DiskWrite = None

    def para(self, base: PerformPara | None) -> PerformPara:
        """The parameters: those not given come from `base`, or are an error without it."""
        given: dict[str, Any] = {
            "--cpu-model": self.cpu_model,
            "--cpu-mhz": self.cpu_mhz,
            "--cpu-cores": self.cpu_cores,
            "--ram-mib": self.ram_mib,
            "--ram-mhz": self.ram_mhz,
            "--disk-type": self.disk_type,
            "--disk-gb": self.disk_gb,
            "--disk-read-mbps": self.disk_read,
            "--disk-write-mbps": self.disk_write,
        }
        if base is None:
            missing = [name for name, value in given.items() if value is None]
            if missing:
                fail("missing parameter options: " + ", ".join(missing), EXIT_USAGE)
            base = PerformPara(
                cpu=Cpu(model="", clock_speed_mhz=0, cores=0),
                ram=Ram(size_mib=0, frequency_mhz=0),
                disk=Disk(kind="", size_gb=0, read_mbps=0, write_mbps=0),
            )

        def pick(value: Any, old: Any) -> Any:
            return old if value is None else value

        return PerformPara(
            cpu=Cpu(
                model=pick(self.cpu_model, base.cpu.model),
                clock_speed_mhz=pick(self.cpu_mhz, base.cpu.clock_speed_mhz),
                cores=pick(self.cpu_cores, base.cpu.cores),
            ),
            gpu=Gpu(
                model=pick(self.gpu_model, base.gpu.model),
                memory_mib=pick(self.gpu_mib, base.gpu.memory_mib),
                cuda_cores=pick(self.gpu_cuda, base.gpu.cuda_cores),
                count=pick(self.gpu_count, base.gpu.count),
            ),
            ram=Ram(
                size_mib=pick(self.ram_mib, base.ram.size_mib),
                frequency_mhz=pick(self.ram_mhz, base.ram.frequency_mhz),
            ),
            disk=Disk(
                kind=pick(self.disk_type, base.disk.kind),
                size_gb=pick(self.disk_gb, base.disk.size_gb),
                read_mbps=pick(self.disk_read, base.disk.read_mbps),
                write_mbps=pick(self.disk_write, base.disk.write_mbps),
            ),
        )


_hardware_options = option_bundle("hw", _Hardware)
"""Gives a command the options of :class:`_Hardware` in place of its ``hw`` parameter."""


def _location(region: str | None, lat: float | None, lon: float | None) -> Location:
    if region is None or lat is None or lon is None:
        fail("give the location as --region, --lat and --lon", EXIT_USAGE)
    return Location.from_degrees(region, lat, lon)


def _evidence(evidence_hash: str | None, evidence_file: Path | None) -> bytes:
    if (evidence_hash is None) == (evidence_file is None):
        fail("give exactly one of --evidence-hash or --evidence-file", EXIT_USAGE)
    if evidence_file is not None:
        from powerverse.infra.attestation import EvidenceError, SignedReport

        try:
            raw = evidence_file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {evidence_file}: {exc.strerror or exc}", EXIT_USAGE)
        try:  # an agent's signed benchmark report: the hash of its canonical form
            report = SignedReport.from_json(raw)
        except EvidenceError:
            return keccak(raw)
        try:
            report.verify()
        except EvidenceError as exc:
            fail(f"{evidence_file}: {exc}", EXIT_USAGE)
        return report.evidence_hash
    assert evidence_hash is not None
    return parse_hash32(evidence_hash, "--evidence-hash")


def _with_tx(resource: Resource, tx: TxInfo) -> dict[str, Any]:
    return {**resource.to_json(), "tx": tx_json(tx)}


def _summary(r: Resource) -> str:
    gpu = (
        f", {r.perform_para.gpu.count}× {r.perform_para.gpu.model}"
        if r.perform_para.gpu.count
        else ""
    )
    return (
        f"resource #{r.token_id} owned by {r.owner}: {r.perform_para.cpu.cores} cores "
        f"{r.perform_para.cpu.model}{gpu}, {r.perform_para.ram.size_mib} MiB RAM, "
        f"{r.perform_para.disk.size_gb} GB {r.perform_para.disk.kind}; "
        f"{r.verification.status.name.lower()}, {r.perform_points} performPoints; "
        f"{r.rental.status.name.lower()}; {r.location.region}"
    )


@app.command("register")
@chain_options
@_hardware_options
def register(
    metadata: Annotated[str, typer.Option("--metadata", help="URI or content id describing it.")],
    *,
    hw: _Hardware,
    region: Region = None,
    lat: Lat = None,
    lon: Lon = None,
    agent_endpoint: Annotated[
        str, typer.Option("--agent-endpoint", help="URL of the provider agent.")
    ] = "",
    agent: Annotated[
        str | None, typer.Option("--agent", help="Address allowed to post heartbeats.")
    ] = None,
    opts: ChainOptions,
) -> None:
    """Mint an unverified token for a resource owned by the signing account."""
    para = hw.para(None)
    location = _location(region, lat, lon)
    agent_address = parse_account(agent, "--agent") if agent is not None else None
    res = opts.sdk(Resources)
    reg = attempt(
        opts.json_output,
        lambda: res.register(
            metadata, para, location, agent_endpoint=agent_endpoint, agent=agent_address
        ),
    )
    resource = res.get(reg.token_id)
    done(opts.json_output, _with_tx(resource, reg.tx), "registered " + _summary(resource))


@app.command("show")
def show(
    token_id: TokenArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """Everything the chain holds about one resource."""
    res = _resources(rpc_url, need_signer=False)
    resource = attempt(json_output, lambda: res.get(token_id))
    if json_output:
        print_json(resource.to_json())
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(_summary(resource))
    console.print(f"metadata: {resource.metadata}")
    console.print(
        f"location: {resource.location.region} ({resource.location.latitude}, "
        f"{resource.location.longitude})"
    )
    console.print(f"agent: {resource.agent_endpoint or '-'} (key {resource.agent})")
    if resource.rental.status.name == "RENTED":
        console.print(
            f"rented by {resource.rental.lessee} at {format_pvc(resource.rental.price_per_day)}"
            f"/day until {resource.rental.end}"
        )


@app.command("list")
@chain_options
def list_(
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Only this owner's tokens (default: the signer's, or all)."),
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """List resources: yours (with --from/--dev-account), an owner's (--owner), or all."""
    who = parse_account(owner, "--owner") if owner is not None else None
    res = opts.sdk(Resources, need_signer=False)
    if who is None and res.client.account is not None:
        who = res.client.address
    total = attempt(opts.json_output, res.total_registered)
    rows: list[Resource] = []
    for token_id in range(1, total + 1):
        if who is not None and res.owner_of(token_id).lower() != who.lower():
            continue
        rows.append(res.get(token_id))
    if opts.json_output:
        print_json({"owner": who, "resources": [r.to_json() for r in rows]})
        return
    table = Table(title=f"Resources of {who}" if who else "Resources", title_justify="left")
    for column in ("token", "owner", "cpu", "gpu", "ram MiB", "points", "verified", "rental"):
        table.add_column(column)
    for r in rows:
        p = r.perform_para
        table.add_row(
            str(r.token_id),
            r.owner,
            f"{p.cpu.cores}× {p.cpu.model}",
            f"{p.gpu.count}× {p.gpu.model}" if p.gpu.count else "-",
            str(p.ram.size_mib),
            str(r.perform_points),
            r.verification.status.name.lower(),
            r.rental.status.name.lower(),
        )
    Console(highlight=False, soft_wrap=True).print(table)


@app.command("update-params")
@chain_options
@_hardware_options
def update_params(token_id: TokenArg, *, hw: _Hardware, opts: ChainOptions) -> None:
    """Change some parameters (the rest stay); the token must be verified again."""
    res = opts.sdk(Resources)
    current = attempt(opts.json_output, lambda: res.get(token_id))
    para = hw.para(current.perform_para)
    tx = attempt(opts.json_output, lambda: res.update_perform_para(token_id, para))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), "updated " + _summary(resource))


@app.command("set-metadata")
@chain_options
def set_metadata(
    token_id: TokenArg,
    metadata: Annotated[str, typer.Argument(help="URI or content id.")],
    *,
    opts: ChainOptions,
) -> None:
    """Replace the metadata (URI or content id)."""
    res = opts.sdk(Resources)
    tx = attempt(opts.json_output, lambda: res.set_metadata(token_id, metadata))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), f"metadata of #{token_id}: {resource.metadata}")


@app.command("set-location")
@chain_options
def set_location(
    token_id: TokenArg,
    region: Region = None,
    lat: Lat = None,
    lon: Lon = None,
    *,
    opts: ChainOptions,
) -> None:
    """Replace the location (region and coordinates)."""
    location = _location(region, lat, lon)
    res = opts.sdk(Resources)
    tx = attempt(opts.json_output, lambda: res.set_location(token_id, location))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), f"#{token_id} is now in {location.region}")


@app.command("set-agent")
@chain_options
def set_agent(
    token_id: TokenArg,
    endpoint: Annotated[str, typer.Option("--endpoint", help="URL of the provider agent.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Address allowed to post heartbeats (none).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Replace the agent endpoint and the heartbeat key."""
    agent_address = parse_account(agent, "--agent") if agent is not None else None
    res = opts.sdk(Resources)
    tx = attempt(opts.json_output, lambda: res.set_agent(token_id, endpoint, agent_address))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), f"agent of #{token_id}: {resource.agent}")


@app.command("transfer")
@chain_options
def transfer(
    token_id: TokenArg,
    to: Annotated[str, typer.Argument(help="The new owner's address.")],
    *,
    opts: ChainOptions,
) -> None:
    """Give the token to another owner (refused while it is rented)."""
    new_owner = parse_account(to, "TO")
    res = opts.sdk(Resources)
    tx = attempt(opts.json_output, lambda: res.transfer(token_id, new_owner))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), f"#{token_id} now belongs to {resource.owner}")


@app.command("verify")
@chain_options
def verify(
    token_id: TokenArg,
    evidence_hash: EvidenceHash = None,
    evidence_file: EvidenceFile = None,
    *,
    opts: ChainOptions,
) -> None:
    """VERIFIER_ROLE: attest the parameters; the contract computes performPoints."""
    digest = _evidence(evidence_hash, evidence_file)
    res = opts.sdk(Resources)
    verified = attempt(opts.json_output, lambda: res.verify(token_id, digest))
    resource = res.get(token_id)
    done(
        opts.json_output,
        _with_tx(resource, verified.tx),
        f"verified #{token_id}: {verified.perform_points} performPoints",
    )


@app.command("flag")
@chain_options
def flag(
    token_id: TokenArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")],
    evidence_hash: EvidenceHash = None,
    evidence_file: EvidenceFile = None,
    *,
    opts: ChainOptions,
) -> None:
    """VERIFIER_ROLE: withdraw the certification (it can no longer be listed or rented)."""
    digest = _evidence(evidence_hash, evidence_file)
    res = opts.sdk(Resources)
    tx = attempt(opts.json_output, lambda: res.flag(token_id, digest, reason))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), f"flagged #{token_id}: {reason}")


@app.command("rescore")
@chain_options
def rescore(token_id: TokenArg, *, opts: ChainOptions) -> None:
    """Recompute a verified token's performPoints with the current weights (anyone)."""
    res = opts.sdk(Resources)
    tx = attempt(opts.json_output, lambda: res.rescore(token_id))
    resource = res.get(token_id)
    done(opts.json_output, _with_tx(resource, tx), f"#{token_id}: {resource.perform_points} points")


@app.command("score")
@_hardware_options
def score(
    *, hw: _Hardware, rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False
) -> None:
    """Preview the performPoints these parameters would get under the current weights."""
    para = hw.para(None)
    res = _resources(rpc_url, need_signer=False)
    points = attempt(json_output, lambda: res.score(para))
    done(json_output, {"performPoints": points}, f"{points} performPoints")


def _weights_json(w: Weights) -> dict[str, int]:
    return asdict(w)


_WEIGHT_OPTIONS = {f.name: "--" + f.name.replace("_", "-") for f in fields(Weights)}


@app.command("weights")
def weights(
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """The scoring weights (milli-points per unit of each parameter)."""
    res = _resources(rpc_url, need_signer=False)
    current = attempt(json_output, res.weights)
    lines = "\n".join(f"{_WEIGHT_OPTIONS[k][2:]}: {v}" for k, v in asdict(current).items())
    done(json_output, _weights_json(current), lines)


Weight = Annotated[int | None, typer.Option(min=0, help="Milli-points per unit.")]


@app.command("set-weights")
@chain_options
def set_weights(
    cpu_clock_speed: Weight = None,
    cpu_cores: Weight = None,
    gpu_memory: Weight = None,
    gpu_cuda_cores: Weight = None,
    gpu_count: Weight = None,
    ram_size: Weight = None,
    ram_frequency: Weight = None,
    disk_size: Weight = None,
    disk_read_speed: Weight = None,
    disk_write_speed: Weight = None,
    *,
    opts: ChainOptions,
) -> None:
    """GOVERNANCE_ROLE: change some scoring weights (the rest stay)."""
    given = {
        "cpu_clock_speed": cpu_clock_speed,
        "cpu_cores": cpu_cores,
        "gpu_memory": gpu_memory,
        "gpu_cuda_cores": gpu_cuda_cores,
        "gpu_count": gpu_count,
        "ram_size": ram_size,
        "ram_frequency": ram_frequency,
        "disk_size": disk_size,
        "disk_read_speed": disk_read_speed,
        "disk_write_speed": disk_write_speed,
    }
    if all(v is None for v in given.values()):
        fail("give at least one weight, e.g. --gpu-memory 2", EXIT_USAGE)
    res = opts.sdk(Resources)
    current = attempt(opts.json_output, res.weights)
    new = Weights(**{k: (asdict(current)[k] if v is None else v) for k, v in given.items()})
    tx = attempt(opts.json_output, lambda: res.set_weights(new))
    done(opts.json_output, {**_weights_json(new), "tx": tx_json(tx)}, "weights updated")


@app.command("challenge")
@chain_options
def challenge(
    token_id: TokenArg,
    agent_url: Annotated[
        str | None,
        typer.Option("--agent-url", help="The agent's API (default: the endpoint on chain)."),
    ] = None,
    window: Annotated[
        int, typer.Option("--window", min=1, max=3600, help="Seconds the agent has to answer.")
    ] = 120,
    cpu_rounds: Annotated[int, typer.Option("--cpu-rounds", min=1)] = 2_000_000,
    memory_mib: Annotated[int, typer.Option("--memory-mib", min=1)] = 256,
    disk_mib: Annotated[int, typer.Option("--disk-mib", min=1)] = 256,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance", min=0.01, max=1.0, help="Flag figures under this fraction of the claim."
        ),
    ] = 0.5,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="The signed evidence the resource was verified with (compares speeds with it).",
        ),
    ] = None,
    flag_it: Annotated[
        bool, typer.Option("--flag", help="Send ResourceNFT.flag when the verdict is FLAG.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the agent's signed answer here.")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """VERIFIER_ROLE: re-verify a resource with a fresh random benchmark challenge.

    The agent must answer before the deadline with work bound to the challenge's seed.
    Figures far below the claim, or a late or wrong answer, give the verdict FLAG (exit 1);
    with --flag the resource is then flagged on chain. Exit 3: the agent cannot be reached."""
    from powerverse.infra.apiclient import AgentApiError
    from powerverse.infra.attestation import EvidenceError, SignedReport
    from powerverse.infra.verification import AgentUnreachable, ChallengeSizes, rechallenge

    client = opts.connect()
    base = None
    if baseline is not None:
        try:
            evidence = SignedReport.from_json(baseline.read_bytes())
        except (OSError, EvidenceError) as exc:
            fail(f"--baseline {baseline}: {exc}", EXIT_USAGE)
        on_chain = Resources(client).get(token_id).verification.evidence_hash
        if evidence.evidence_hash != on_chain:
            fail(
                f"--baseline {baseline} is not the evidence resource #{token_id} was verified "
                f"with (hash 0x{evidence.evidence_hash.hex()}, on chain 0x{on_chain.hex()})",
                EXIT_USAGE,
            )
        base = evidence.report.results
    sizes = ChallengeSizes(
        window_s=window,
        cpu_rounds=cpu_rounds,
        cpu_checkpoints=min(64, cpu_rounds),
        memory_mib=memory_mib,
        disk_mib=disk_mib,
    )
    try:
        result = attempt(
            opts.json_output,
            lambda: rechallenge(
                client,
                token_id,
                sizes=sizes,
                baseline=base,
                tolerance=tolerance,
                flag=flag_it,
                agent_url=agent_url,
            ),
        )
    except AgentUnreachable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except AgentApiError as exc:
        fail(f"the agent refused the challenge ({exc.status}): {exc.detail}")
    except EvidenceError as exc:
        fail(f"the agent's answer cannot be attributed to it: {exc}")
    if out is not None:
        out.write_text(json.dumps(result.response.to_json(), indent=1))
    verdict = result.verdict
    doc = {
        "tokenId": token_id,
        "status": verdict.status.value,
        "challenge": result.challenge.hash,
        "evidenceHash": "0x" + verdict.evidence_hash.hex(),
        "findings": [asdict(f) for f in verdict.findings],
        "flagTx": tx_json(result.flag_tx) if result.flag_tx else None,
    }
    if verdict.ok:
        done(opts.json_output, doc, f"#{token_id} passed re-verification")
        return
    lines = [f"#{token_id} FLAG: " + "; ".join(f.detail for f in verdict.findings)]
    if result.flag_tx:
        lines.append(f"flagged on chain (tx {result.flag_tx.tx_hash})")
    else:
        lines.append("not flagged on chain (add --flag to do so)")
    done(opts.json_output, doc, "\n".join(lines))
    raise typer.Exit(1)
