"""A session as the readers give it: what one client sent a sensor on one connection.

Every source of sessions produces this one shape, before any classification:
the reassembler (:mod:`teiten.flows.reassembly`) from captured packets, the
sensor's event files (:mod:`teiten.capture.events`) and Cowrie logs
(:mod:`teiten.capture.cowrie`). The pipeline then classifies (``classify/``),
enriches and stores all of them with the same code. A honeypot that logs the
shell rather than the bytes (Cowrie) adds a :class:`Shell`: the commands,
logins and downloads it recorded, which the classifier reads instead of
parsing the client's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShellLogin:
    """One login attempt a honeypot logged, with the commands typed after it."""

    username: str
    password: str
    success: bool
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Download:
    """A file a honeypot saw fetched or uploaded (``url`` is '' for an upload)."""

    url: str
    shasum: str
    outfile: str = ""


@dataclass(frozen=True)
class Shell:
    """What a honeypot logged of a session's shell (each part already bounded by its reader)."""

    honeypot: str
    """Which honeypot logged it (``cowrie``)."""
    session: str
    """The honeypot's own session id."""
    protocol: str
    """``ssh``, ``telnet`` or '' as the honeypot said."""
    commands: tuple[str, ...] = ()
    command_count: int = 0
    """Commands typed, including any not kept in :attr:`commands`."""
    logins: tuple[ShellLogin, ...] = ()
    downloads: tuple[Download, ...] = ()
    failed_downloads: tuple[str, ...] = ()
    sensor: str = ""
    """The sensor name the honeypot's log gave ('' if none)."""
    client_version: str = ""
    duration_s: float | None = None


@dataclass
class Session:
    """One client→server conversation with what each side sent (capped)."""

    proto: int
    ip_version: int
    client: bytes
    """Client address, 4 or 16 bytes."""
    server: bytes
    """Sensor address, 4 or 16 bytes (all zero when the reader did not learn it)."""
    client_port: int
    server_port: int
    ts_first: int
    ts_last: int
    client_bytes: bytes
    server_bytes: bytes
    client_total: int
    """Client payload bytes seen (including what was not kept)."""
    packets: int
    gap: bool = False
    truncated: bool = False
    notes: tuple[str, ...] = ()
    """What the reader found odd about the session (``open_at_end``, ``no_connect``…)."""
    shell: Shell | None = None
    """What a honeypot logged of the shell, for sessions read from its log."""
