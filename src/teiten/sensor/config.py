"""The sensor's TOML configuration: ``[sensor]``, optional ``[capture]``, ``[[responder]]``.

:func:`load_config` reads and validates a file; every mistake is one
:class:`~teiten.errors.ConfigError` line naming the key (unknown keys, unknown
responder kinds, bad or duplicate listen addresses, bad networks or limits).
The keys and their meaning are in docs/sensor.md.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teiten.errors import ConfigError
from teiten.sensor.bpf import interface_linktype, program_for

KINDS = ("upnp-realtek", "huawei-hg532", "http", "telnet", "blackhole")
"""The responder kinds a ``[[responder]]`` may name."""
MAX_CONFIG = 1 << 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class Limits:
    """Bounds every connection is held to (docs/sensor.md, "Hardening")."""

    max_bytes: int = 64 << 10
    """Client bytes read per connection; the connection is closed at this many."""
    max_line: int = 4096
    """Longest line (HTTP header, Telnet input) read; longer lines are cut."""
    idle_timeout: float = 30.0
    """Seconds without a byte from the client before the connection is closed."""
    total_timeout: float = 120.0
    """Seconds a connection may last at most."""
    max_connections: int = 1024
    """Connections open at once, all responders together; more are closed at once."""
    max_per_source: int = 32
    """Connections open at once from one client address."""


@dataclass(frozen=True)
class Listen:
    """One address and TCP port a responder listens on."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Responder:
    """One ``[[responder]]`` table: a kind and where it listens."""

    kind: str
    listen: tuple[Listen, ...]


@dataclass(frozen=True)
class CaptureConfig:
    """The ``[capture]`` table: passive capture into rotated files (docs/sensor.md)."""

    interface: str
    filter: str = ""
    """tcpdump filter syntax; empty: ``dst net`` of each of the sensor's networks."""
    rotate_seconds: float = 60.0
    """Seconds after a file's first packet at which it is closed and published."""
    rotate_bytes: int = 256 << 20
    """Size at which a file is closed and published (checked at each write: up to 9 MiB more)."""
    snaplen: int = 65535
    """Bytes kept of each packet."""
    ring_mb: int = 64
    """Size of the kernel ring the packets wait in (MiB)."""


@dataclass(frozen=True)
class SensorConfig:
    """A validated sensor configuration."""

    name: str
    data: Path
    spool: Path
    networks: tuple[str, ...]
    responders: tuple[Responder, ...]
    limits: Limits
    ingest_interval: float = 5.0
    """Seconds between closing the event file and ingesting closed files."""
    detect_interval: float = 300.0
    """Seconds between stored detection runs after an ingest round; 0 turns detection off."""
    metrics: Listen | None = None
    """Loopback address of the Prometheus metrics endpoint, when given."""
    capture: CaptureConfig | None = None
    """Passive capture, when a ``[capture]`` table is given and not ``enabled = false``."""
    keep_ingested_days: float = 7.0
    """Days ingested files are kept in the spool's ``ingested/`` folders (0: removed at once)."""
    keep_ingested_gb: float = 10.0
    """Most GB the ``ingested/`` folders keep, oldest removed first (0: removed at once)."""
    user: str | None = None
    """User to switch to after the listeners are bound (root only; docs/sensor.md)."""
    group: str | None = None
    """Group to switch to with ``user`` (default: the user's own group)."""

    @property
    def events_dir(self) -> Path:
        return self.spool / "events"

    @property
    def captures_dir(self) -> Path:
        """The capture inbox: closed ``.pcap``/``.pcapng`` files renamed into place."""
        return self.spool / "captures"

    @property
    def state_path(self) -> Path:
        """The last ingest and detection of the running sensor (``teiten sensor status``)."""
        return self.spool / "state.json"


_SENSOR_KEYS = {"name", "data", "spool", "networks", "ingest_interval", "detect_interval",
                "metrics", "user", "group", "keep_ingested_days", "keep_ingested_gb"}  # fmt: skip
_LIMIT_KEYS = {"max_bytes", "max_line", "idle_timeout", "total_timeout", "max_connections",
               "max_per_source"}  # fmt: skip
_CAPTURE_KEYS = {"enabled", "interface", "filter", "rotate_seconds", "rotate_bytes", "snaplen",
                 "ring_mb"}  # fmt: skip
_RESPONDER_KEYS = {"kind", "listen"}


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(
            f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(allowed))})"
        )


def _string(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: a non-empty string is required")
    return value


def _number(value: Any, key: str, *, integer: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if integer:
        ok = ok and isinstance(value, int)
    if not ok or not 0 < value < 1e9:
        kind = "a positive integer" if integer else "a positive number of seconds"
        raise ConfigError(f"sensor.{key}: {kind} is required, not {value!r}")
    return float(value)


def parse_listen(text: Any) -> Listen:
    """``ADDRESS:PORT`` (``[ADDRESS]:PORT`` for IPv6) as a :class:`Listen`.

    >>> str(parse_listen("127.0.0.1:52869")), str(parse_listen("[::1]:23"))
    ('127.0.0.1:52869', '[::1]:23')
    """
    m = _LISTEN.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ConfigError(f"listen address {text!r}: expected ADDRESS:PORT or [IPv6]:PORT")
    host = m["v6"] or m["v4"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"listen address {text!r}: {host!r} is not an IP address") from None
    if (ip.version == 6) != bool(m["v6"]):
        raise ConfigError(f"listen address {text!r}: write IPv6 addresses as [ADDRESS]:PORT")
    port = int(m["port"])
    if not 0 < port < 65536:
        raise ConfigError(f"listen address {text!r}: port must be 1-65535")
    return Listen(str(ip), port)


def _networks(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("sensor.networks: a list of CIDR strings is required")
    out = []
    for v in value:
        try:
            out.append(str(ipaddress.ip_network(v.strip(), strict=False)))
        except ValueError:
            raise ConfigError(f"sensor.networks: {v!r} is not a network (CIDR)") from None
    return tuple(out)


def _responders(value: Any) -> tuple[Responder, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("at least one [[responder]] table is required")
    seen: dict[tuple[str, int], str] = {}
    out = []
    for n, table in enumerate(value, 1):
        where = f"responder {n}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: a table is required ([[responder]])")
        _unknown(table, _RESPONDER_KEYS, where)
        kind = _string(table, "kind", where)
        if kind not in KINDS:
            raise ConfigError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        listen = table.get("listen")
        if isinstance(listen, str):
            listen = [listen]
        if not isinstance(listen, list) or not listen:
            raise ConfigError(f"{where}.listen: a list of ADDRESS:PORT strings is required")
        addrs = tuple(parse_listen(x) for x in listen)
        for a in addrs:
            key = (a.host, a.port)
            if key in seen:
                raise ConfigError(f"{where}: {a} is already used by {seen[key]}")
            seen[key] = f"{where} ({kind})"
        out.append(Responder(kind, addrs))
    return tuple(out)


_KEEP = {"keep_ingested_days": 7.0, "keep_ingested_gb": 10.0}


def _keep(value: Any, key: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 <= value < 1e6:
        raise ConfigError(f"sensor.{key}: a number ≥ 0 is required (0 = remove at once)")
    return float(value)


def _capture(table: Any) -> CaptureConfig | None:
    """The ``[capture]`` table, or None when absent or ``enabled = false``."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError("capture: a table is required ([capture])")
    _unknown(table, _CAPTURE_KEYS, "capture")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError("capture.enabled: true or false is required")
    if not enabled:
        return None
    filt = table.get("filter", "")
    if not isinstance(filt, str) or len(filt) > 4096:
        raise ConfigError(
            "capture.filter: a string (tcpdump syntax, ≤ 4096 characters) is required"
        )
    bounds = {"rotate_bytes": (1 << 16, 1 << 40), "snaplen": (64, 262144), "ring_mb": (4, 1 << 14)}
    ints = {}
    for key, (lo, hi) in bounds.items():
        value = table.get(key, getattr(CaptureConfig, key))
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigError(f"capture.{key}: an integer from {lo} to {hi} is required")
        ints[key] = value
    seconds = table.get("rotate_seconds", 60.0)
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not 1 <= seconds <= 86400
    ):
        raise ConfigError("capture.rotate_seconds: a number of seconds from 1 to 86400 is required")
    return CaptureConfig(interface=_string(table, "interface", "capture"), filter=filt,
                         rotate_seconds=float(seconds), **ints)  # fmt: skip


def parse_config(doc: dict[str, Any], base: Path = Path()) -> SensorConfig:
    """A :class:`SensorConfig` from a parsed TOML document (relative paths from ``base``)."""
    _unknown(doc, {"sensor", "capture", "responder"}, "config")
    sensor = doc.get("sensor")
    if not isinstance(sensor, dict):
        raise ConfigError("a [sensor] table is required")
    _unknown(sensor, _SENSOR_KEYS | _LIMIT_KEYS, "sensor")
    name = _string(sensor, "name", "sensor")
    if not _NAME.fullmatch(name):
        raise ConfigError(f"sensor.name {name!r}: letters, digits, '.', '_' and '-' only (≤ 64)")
    data = base / Path(_string(sensor, "data", "sensor")).expanduser()
    spool = base / Path(_string(sensor, "spool", "sensor")).expanduser()
    limits: dict[str, int | float] = {
        k: int(v) if k.startswith("max_") else v
        for k in _LIMIT_KEYS
        if k in sensor and (v := _number(sensor[k], k, integer=k.startswith("max_")))
    }
    interval = _number(sensor.get("ingest_interval", 5.0), "ingest_interval", integer=False)
    detect = sensor.get("detect_interval", 300.0)
    off = isinstance(detect, int | float) and not isinstance(detect, bool) and detect == 0
    detect = 0.0 if off else _number(detect, "detect_interval (0 = off)", integer=False)
    metrics = None
    if "metrics" in sensor:
        metrics = parse_listen(sensor["metrics"])
        if not ipaddress.ip_address(metrics.host).is_loopback:
            raise ConfigError(f"sensor.metrics {str(metrics)!r}: must be a loopback address")
    responders = _responders(doc.get("responder"))
    if metrics is not None and any(metrics == a for r in responders for a in r.listen):
        raise ConfigError(f"sensor.metrics: {metrics} is already used by a responder")
    user = _string(sensor, "user", "sensor") if "user" in sensor else None
    group = _string(sensor, "group", "sensor") if "group" in sensor else None
    if group is not None and user is None:
        raise ConfigError("sensor.group: needs sensor.user")
    keep = {k: _keep(sensor.get(k, default), k) for k, default in _KEEP.items()}
    return SensorConfig(
        name=name,
        data=data,
        spool=spool,
        networks=_networks(sensor.get("networks", [])),
        responders=responders,
        metrics=metrics,
        limits=Limits(**limits),  # type: ignore[arg-type]
        ingest_interval=interval,
        detect_interval=float(detect),
        capture=_capture(doc.get("capture")),
        keep_ingested_days=keep["keep_ingested_days"],
        keep_ingested_gb=keep["keep_ingested_gb"],
        user=user,
        group=group,
    )


def load_config(path: Path | str) -> SensorConfig:
    """Read and validate a sensor config file; relative paths in it are from its folder."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG + 1)
    except OSError as e:
        raise ConfigError(f"cannot read sensor config {p}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG:
        raise ConfigError(f"sensor config {p}: larger than {MAX_CONFIG} bytes")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"sensor config {p}: {str(e).splitlines()[0]}") from None
    return parse_config(doc, p.parent)


def describe(config: SensorConfig) -> list[str]:
    """What a configuration would do, one line each (``teiten sensor check``)."""
    lines = [
        f"sensor {config.name}: store {config.data}, spool {config.spool}, "
        f"ingest every {config.ingest_interval:g} s, "
        + (
            f"detect every {config.detect_interval:g} s"
            if config.detect_interval
            else "no scheduled detection"
        ),
        f"capture inbox: {config.captures_dir} (closed .pcap/.pcapng files are ingested)",
        f"own networks: {', '.join(config.networks) if config.networks else '(none given)'}",
    ]
    for r in config.responders:
        lines.extend(f"{r.kind}: listens on {a} (TCP)" for a in r.listen)
    if config.metrics is not None:
        lines.append(f"metrics: Prometheus text on http://{config.metrics}/metrics")
    if config.user is not None:
        to = config.user + (f":{config.group}" if config.group else "")
        lines.append(f"privileges: switches to {to} after binding (when started as root)")
    if any(a.port < 1024 for r in config.responders for a in r.listen):
        lines.append(
            "note: ports below 1024 need CAP_NET_BIND_SERVICE or root with sensor.user "
            "(docs/sensor.md)"
        )
    lines.extend(_capture_lines(config))
    lines.append(
        f"ingested files kept {config.keep_ingested_days:g} day(s), "
        f"{config.keep_ingested_gb:g} GB at most (spool's ingested/ folders)"
    )
    return lines


def _capture_lines(config: SensorConfig) -> list[str]:
    """Validate the capture (interface, filter compiled by libpcap) and say what it does."""
    cap = config.capture
    if cap is None:
        return ["passive capture: off (no [capture] table, or enabled = false)"]
    linktype = interface_linktype(cap.interface)
    program = program_for(cap.filter, config.networks, linktype, cap.snaplen)
    return [
        f"capture: {cap.interface}, {program.label()} ({len(program)} BPF instructions), snaplen "
        f"{cap.snaplen}, ring {cap.ring_mb} MiB; files rotated every {cap.rotate_seconds:g} s "
        f"or {cap.rotate_bytes / (1 << 20):g} MiB into {config.captures_dir}",
        f"note: {CAPTURE_NOTE}",
    ]


CAPTURE_NOTE = (
    "passive capture opens a packet socket: it needs CAP_NET_RAW (root with sensor.user, "
    "or the capability; docs/sensor.md)"
)

EXAMPLE = """\
# teiten sensor configuration (docs/sensor.md). Check it with:
#   teiten sensor check --config sensor.toml

[sensor]
name = "lab-1"                     # sensor name stored with every row (letters, digits, . _ -)
data = "teiten-data"               # the store it feeds (as --data elsewhere); relative to this file
spool = "spool"                    # event files (spool/events) and closed captures renamed
                                   # into spool/captures wait here before ingestion
networks = ["203.0.113.0/24"]      # the sensor's own addresses: secret; never published
ingest_interval = 5                # seconds between closing the event file and ingesting it
detect_interval = 300              # seconds between detection runs (alerts, webhooks); 0 = off
# metrics = "127.0.0.1:9108"       # Prometheus text at /metrics (loopback addresses only)
# Limits per connection and in all (defaults shown):
# max_bytes = 65536                # client bytes read per connection
# max_line = 4096                  # longest header or Telnet line
# idle_timeout = 30                # seconds without a byte before closing
# total_timeout = 120              # seconds a connection may last
# max_connections = 1024           # open connections, all responders together
# max_per_source = 32              # open connections from one address
# user = "teiten"                  # started as root: switch to this user after binding
# group = "teiten"                 # and this group (default: the user's own group)

# keep_ingested_days = 7           # ingested event files and captures kept this long (0: none)
# keep_ingested_gb = 10            # and at most this much, oldest removed first (0: none)

# [capture]                        # passive capture into rotated files (needs CAP_NET_RAW)
# interface = "eth0"               # the interface the sensor's addresses arrive on
# filter = "dst net 203.0.113.0/24"  # tcpdump syntax; default: dst net of each of networks
# rotate_seconds = 60              # a file is published this long after its first packet
# rotate_bytes = 268435456         # or at this size (256 MiB)
# snaplen = 65535                  # bytes kept of each packet
# ring_mb = 64                     # kernel ring the packets wait in
# enabled = true                   # false: keep the table, capture nothing

[[responder]]
kind = "upnp-realtek"              # miniupnpd-like Realtek router (CVE-2014-8361)
listen = ["127.0.0.1:52869"]

[[responder]]
kind = "huawei-hg532"              # /ctrlt/DeviceUpgrade_1 with a Digest challenge
listen = ["127.0.0.1:37215"]

[[responder]]
kind = "http"                      # any request: a bland page
listen = ["127.0.0.1:8080"]

[[responder]]
kind = "telnet"                    # login prompts and a canned BusyBox shell
listen = ["127.0.0.1:2323"]

[[responder]]
kind = "blackhole"                 # records the first bytes, says nothing
listen = ["127.0.0.1:7547"]
"""
"""A documented configuration :func:`parse_config` accepts (``teiten sensor example-config``)."""
