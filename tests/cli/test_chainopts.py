"""`chain_options` / `option_bundle`: one definition of the shared options, as Typer sees them."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    DevAccountOption,
    FromOption,
    JsonOption,
    KeystoreDirOption,
    PasswordFileOption,
    RpcOption,
    chain_options,
)
from powerverse.cli.common import option_bundle

runner = CliRunner()
SHARED = ["--rpc-url", "--from", "--keystore", "--password-file", "--dev-account", "--json"]


def _app(command: Any) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("one")(command)
    app.command("two", hidden=True)(lambda: None)  # a group: `one` is invoked by name
    return app


def _option_names(app: typer.Typer) -> list[str]:
    command = typer.main.get_command(app).commands["one"]  # type: ignore[attr-defined]
    return [p.opts[0] for p in command.params]


def test_options_take_the_place_of_opts_in_order() -> None:
    seen: list[Any] = []

    @chain_options
    def one(
        token: Annotated[int, typer.Argument()],
        note: Annotated[str, typer.Option("--note")] = "",
        *,
        opts: ChainOptions,
    ) -> None:
        seen.append((token, note, opts))

    app = _app(one)
    assert _option_names(app) == ["token", "--note", *SHARED]
    signer = ["--from", "0x" + "11" * 20, "--keystore", "ks", "--password-file", "pw"]
    args = ["one", "7", "--note", "n", *signer, "--dev-account", "3", "--json"]
    result = runner.invoke(app, args, env={"PV_RPC_URL": "http://node:1"})
    assert result.exit_code == 0, result.output
    assert seen == [
        (
            7,
            "n",
            ChainOptions("http://node:1", "0x" + "11" * 20, Path("ks"), Path("pw"), 3, True),
        )
    ]


def test_defaults_are_the_options_defaults() -> None:
    seen: list[ChainOptions] = []

    @chain_options
    def one(*, opts: ChainOptions) -> None:
        seen.append(opts)

    result = runner.invoke(_app(one), ["one"], env={"PV_RPC_URL": None})
    assert result.exit_code == 0, result.output
    assert seen == [ChainOptions()] and seen[0].rpc_url == DEFAULT_RPC


def test_same_click_options_as_the_spelled_out_block() -> None:
    def spelled(
        rpc_url: RpcOption = DEFAULT_RPC,
        from_: FromOption = None,
        keystore: KeystoreDirOption = None,
        password_file: PasswordFileOption = None,
        dev_account: DevAccountOption = None,
        json_output: JsonOption = False,
    ) -> None:
        """Doc."""

    @chain_options
    def bundled(*, opts: ChainOptions) -> None:
        """Doc."""

    def described(command: Any) -> list[dict[str, Any]]:
        params = typer.main.get_command(_app(command)).commands["one"].params  # type: ignore[attr-defined]
        keys = ("name", "opts", "envvar", "default", "help", "min", "max", "is_flag", "required")
        return [{k: getattr(p, k, None) for k in keys} for p in params]

    assert described(bundled) == described(spelled)
    assert bundled.__doc__ == "Doc." and bundled.__name__ == "bundled"


def test_without_keystore() -> None:
    @chain_options(keystore=False)
    def one(*, opts: ChainOptions) -> None:
        typer.echo(repr((opts.keystore, opts.password_file, opts.dev_account)))

    app = _app(one)
    assert _option_names(app) == ["--rpc-url", "--from", "--dev-account", "--json"]
    result = runner.invoke(app, ["one", "--dev-account", "2"])
    assert result.exit_code == 0 and result.output.strip() == "(None, None, 2)"
    assert runner.invoke(app, ["one", "--keystore", "x"]).exit_code == 2


@dataclass(frozen=True)
class Size:
    """Another bundle (annotations are resolved in the module, as Typer does)."""

    width: Annotated[int, typer.Option("--width")] = 1
    height: Annotated[int, typer.Option("--height")] = 2


def test_bundles_stack_and_keep_their_places() -> None:
    sized = option_bundle("size", Size)

    @chain_options
    @sized
    def one(
        name: Annotated[str, typer.Argument()],
        *,
        size: Size,
        label: Annotated[str, typer.Option("--label")] = "",
        opts: ChainOptions,
    ) -> None:
        typer.echo(f"{name} {size.width}x{size.height} {label} {opts.json_output}")

    app = _app(one)
    assert _option_names(app) == ["name", "--width", "--height", "--label", *SHARED]
    result = runner.invoke(app, ["one", "box", "--height", "5", "--label", "l", "--json"])
    assert result.exit_code == 0 and result.output.strip() == "box 1x5 l True"
    assert list(inspect.signature(one).parameters)[:4] == ["name", "width", "height", "label"]


def test_opts_must_be_keyword_only() -> None:
    def positional(opts: ChainOptions) -> None: ...

    with pytest.raises(TypeError, match="keyword-only"):
        chain_options(positional)
