"""Running the server: the listening socket, uvicorn, and a one-line start message."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

from teiten.config import Settings
from teiten.errors import ConfigError, DependencyError, StoreError
from teiten.serve import create_app
from teiten.serve.context import ServeOptions


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one line saying why it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"cannot listen on {host}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def run(
    settings: Settings,
    options: ServeOptions,
    *,
    host: str,
    port: int,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM end it cleanly)."""
    try:
        import uvicorn
    except ImportError:
        raise DependencyError(
            "teiten serve needs FastAPI and uvicorn (dependencies of teiten): reinstall it"
        ) from None
    if not (settings.data_dir / "catalog.sqlite").is_file():
        raise StoreError(
            f"no store in {settings.data_dir}: give --data DIR (teiten ingest or teiten demo "
            "make one)"
        )
    app = create_app(settings, options)
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    secrecy = "sensor addresses " + ("shown (--internal)" if options.internal else "masked")
    access = "token required" if options.token else "loopback only"
    echo(f"serving http://{shown}:{sock.getsockname()[1]}/ (read only, {access}, {secrecy})")
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, server_header=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    server.capture_signals = lambda: _stop_on_signals(server)  # type: ignore[method-assign]
    server.run(sockets=[sock])


@contextlib.contextmanager
def _stop_on_signals(server: Any) -> Iterator[None]:
    """SIGTERM and SIGINT end the server gracefully and the process with status 0 (uvicorn
    would raise the signal again after its shutdown, and the process would die of it)."""

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
