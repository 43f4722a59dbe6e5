"""``teiten serve``: the dashboard and the JSON API over a store."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.cli.common import data_option, engine_option, settings_from, tz_option
from teiten.errors import ConfigError
from teiten.serve.context import ServeOptions, is_loopback


def serve_options(
    host: str,
    token: str | None,
    token_file: Path | None,
    internal: bool,
    rate: float,
    advisories: tuple[Path, ...],
    sensor_config: Path | None,
) -> ServeOptions:
    """The server's options; refuses to listen beyond loopback without a token."""
    secret = (token or "").strip()
    if token_file is not None:
        try:
            secret = token_file.read_text(encoding="utf-8")[:4096].strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the token file {token_file}: {e}") from None
    if secret and len(secret) < 16:
        raise ConfigError("the token must be at least 16 characters long")
    if not secret and not is_loopback(host):
        raise ConfigError(
            f"--host {host} is not loopback: give a token (--token-file FILE or "
            "TEITEN_SERVE_TOKEN) so that only those who hold it can read"
        )
    return ServeOptions(
        internal=internal,
        token=secret,
        rate=rate,
        advisories=tuple(str(d) for d in advisories),
        sensor_config=str(sensor_config or ""),
        warm=True,
    )


@click.command("serve")
@data_option
@engine_option
@tz_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--token",
    envvar="TEITEN_SERVE_TOKEN",
    default=None,
    metavar="TOKEN",
    help="Require this token (Bearer, or HTTP basic password); needed beyond loopback. "
    "Prefer the environment variable TEITEN_SERVE_TOKEN or --token-file.",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Read the token from FILE.",
)
@click.option(
    "--internal", is_flag=True, help="Show sensor addresses (default: masked everywhere)."
)
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=20.0,
    show_default=True,
    help="Requests per second per client (0: no limit).",
)
@click.option(
    "--advisories",
    multiple=True,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Advisory files to use besides the bundled ones (repeatable).",
)
@click.option(
    "--sensor-config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A sensor's config: show its health on the overview page.",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    host: str,
    port: int,
    token: str | None,
    token_file: Path | None,
    internal: bool,
    rate: float,
    advisories: tuple[Path, ...],
    sensor_config: Path | None,
) -> None:
    """Dashboard pages and the JSON API (/api/v1) over the store, read only.

    Listens on loopback unless --host says otherwise, which then needs a token.

    \b
    Example:  teiten serve --data teiten-demo/data
              curl 'http://127.0.0.1:8080/api/v1/trend?port=23/tcp&split=domestic'
    """
    from teiten.serve.server import run

    settings = settings_from(ctx, data=data, engine=engine, tz=tz)
    options = serve_options(host, token, token_file, internal, rate, advisories, sensor_config)
    run(settings, options, host=host, port=port, echo=lambda line: click.echo(line, err=True))


COMMANDS = [serve_command]
