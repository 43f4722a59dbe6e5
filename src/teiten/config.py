"""Settings: declared once, layered bundled defaults < teiten.toml < TEITEN_* env < options.

Nothing reads settings at import time; commands build a :class:`Settings` and
pass it in. ``teiten settings`` prints every value with where it came from;
settings declared ``secret`` (credentials such as ``webhook_secret``) are shown
only as ``(set)`` or ``(empty)``, there and in ``repr``.

Example::

    s = load_settings(overrides={"home_country": "JP"})
    s.home_country      # 'JP'
    s.origin["home_country"]   # 'option'
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from teiten.errors import ConfigError
from teiten.export.tlp import parse_tlp


def _country(value: Any) -> str:
    s = str(value).strip().upper()
    if len(s) != 2 or not s.isalpha():
        raise ValueError("expected a two-letter ISO country code such as JP")
    return s


def _networks(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        item = str(item).strip()
        if item:
            out.append(str(ipaddress.ip_network(item, strict=False)))
    return tuple(out)


def _sensor(value: Any) -> str:
    s = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", s):
        raise ValueError("use 1-64 letters, digits, '.', '_' or '-' (it names a folder)")
    return s


def _source_spec(value: Any) -> str:
    s = str(value).strip()
    kind = s.split(":", 1)[0]
    if kind not in ("iptocc", "rir", "mmdb", "none") or (kind in ("rir", "mmdb") and ":" not in s):
        raise ValueError("expected iptocc, none, rir:FILE[,FILE…] or mmdb:FILE")
    return s


def _url(value: Any) -> str:
    s = str(value).strip()
    if s and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", s):
        raise ValueError("expected an http:// or https:// URL")
    return s


def _tz(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {value!r}") from e
    return str(value)


def _engine(value: Any) -> str:
    from teiten.engine import ENGINES

    s = str(value).strip().lower()
    if s not in ENGINES:
        raise ValueError(f"expected one of {', '.join(ENGINES)}")
    return s


def _spark_master(value: Any) -> str:
    s = str(value).strip()
    if not re.fullmatch(r"(local(\[(\*|\d{1,4})(,\d{1,4})?\])?|(spark|yarn|k8s|mesos)\S*)", s):
        raise ValueError("expected local, local[N], local[*], spark://HOST:PORT, yarn or k8s://…")
    return s


def _spark_data_url(value: Any) -> str:
    s = str(value).strip()
    if not s:
        return s
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/\s?#]*)(/[^\s?#*\[\]{}\\]*)?", s)
    if not m:
        raise ValueError(
            "expected scheme://[host]/path such as hdfs://nn:8020/teiten-data,"
            " s3a://bucket/teiten-data or file:///srv/teiten-data (no spaces, globs or ?#)"
        )
    return f"{m[1].lower()}://{m[2]}{(m[3] or '').rstrip('/')}"


def _paths(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


def _count(value: Any) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("expected a whole number, 0 or more")
    return n


def _positive_int(value: Any) -> int:
    n = int(value)
    if n <= 0:
        raise ValueError("expected a positive whole number")
    return n


def _seconds(value: Any) -> float:
    n = float(value)
    if not n >= 0:
        raise ValueError("expected a number of seconds ≥ 0 (inf: no limit)")
    return n


def _threads(value: Any) -> int:
    n = int(value)
    if n < 1 or n > 64:
        raise ValueError("expected 1 to 64")
    return n


MASK_SET = "******** (set)"
MASK_EMPTY = "(empty)"


@dataclass(frozen=True)
class Setting:
    """One declared setting: its name, parser, default and meaning.

    A ``secret`` setting is a credential: its value is never shown, only whether
    it is set (:meth:`shown`).
    """

    name: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str
    secret: bool = False

    def shown(self, value: Any) -> Any:
        """The value as it may be printed or logged."""
        if not self.secret:
            return value
        return MASK_SET if value not in ("", None, ()) else MASK_EMPTY


SETTINGS: tuple[Setting, ...] = (
    Setting("data", str, "teiten-data", "Data directory (Parquet lake and catalog)."),
    Setting("sensor", _sensor, "sensor", "Sensor name recorded with ingested packets."),
    Setting(
        "sensor_networks",
        _networks,
        (),
        "The sensor's own networks (CIDRs): packets from them are outbound replies.",
    ),
    Setting("home_country", _country, "JP", "Country whose sources count as domestic."),
    Setting("tz", _tz, "UTC", "Time zone that days are cut in for series and reports."),
    Setting("engine", _engine, "duckdb", "SQL engine for analysis: duckdb (embedded) or spark."),
    Setting(
        "spark_master",
        _spark_master,
        "local[*]",
        "Spark master URL (engine = spark); under spark-submit its --master is used instead.",
    ),
    Setting(
        "spark_data_url",
        _spark_data_url,
        "",
        "Where Spark reads the data folder's files (hdfs://…, s3a://…, file:///…); the catalog"
        " stays in the data folder. Empty: the data folder itself.",
    ),
    Setting("stix_tlp", parse_tlp, "amber", "TLP 2.0 marking of STIX exports (clear…red)."),
    Setting(
        "country_source",
        _source_spec,
        "iptocc",
        "Allocated country: iptocc, rir:FILE[,FILE…] (RIR delegated stats) or mmdb:FILE.",
    ),
    Setting("asn_source", _source_spec, "none", "Source AS numbers: none or mmdb:FILE."),
    Setting(
        "tag_files",
        _paths,
        (),
        "Operators' lists of known scanners (TOML, the format of docs/tags.md), added to the"
        " shipped list when sources are tagged.",
    ),
    Setting("threads", _threads, 2, "Threads of ingest (decoding, rollups and writing overlap)."),
    Setting("chunk_mb", _positive_int, 32, "Read buffer per input, MiB."),
    Setting("row_group_rows", _positive_int, 1 << 20, "Rows per Parquet row group."),
    Setting(
        "exact_rollup_rows",
        _positive_int,
        2_000_000,
        "Per-port series and rankings count sources exactly while that reads at most this"
        " many hourly rollup rows; over more, they read the day sketches (sources within"
        " their error, 1.6 %; docs/architecture.md, Rollups).",
    ),
    Setting(
        "pack_files",
        _count,
        8,
        "After an ingest, a month with this many files of a day table (sketches, port"
        " lists) has them packed into one (docs/architecture.md, Packs); 0 never packs.",
    ),
    Setting("session_bytes", _positive_int, 64 << 10, "Client bytes kept per session."),
    Setting(
        "max_expansion",
        _positive_int,
        1000,
        "Stop an input whose content grows past this many times its compressed size.",
    ),
    Setting(
        "max_days_per_input",
        _positive_int,
        366,
        "Day partitions one input may write (a year); rows of later days go to its quarantine.",
    ),
    Setting("lock_wait", _seconds, 0.0, "Seconds ingest waits for another writer (inf: no limit)."),
    Setting(
        "webhook_url",
        _url,
        "",
        "Alerts are POSTed here as JSON when set (http/https). Secret (such URLs carry tokens).",
        secret=True,
    ),
    Setting(
        "webhook_secret",
        str,
        "",
        "Secret HMAC-SHA256 key for X-Teiten-Signature (empty: unsigned, with a warning).",
        secret=True,
    ),
    Setting("webhook_retries", _threads, 4, "Delivery attempts per alert, with backoff."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings with the origin of each value."""

    values: Mapping[str, Any]
    origin: Mapping[str, str] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        """Every value as it may be printed or logged: secret ones masked."""
        return {k: _BY_NAME[k].shown(v) if k in _BY_NAME else v for k, v in self.values.items()}

    def __repr__(self) -> str:
        return f"Settings({self.shown()!r})"

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data"])

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some values given as options."""
        return load_settings(overrides=overrides, base=self)


def _parse(name: str, value: Any, where: str) -> Any:
    if name not in _BY_NAME:
        known = ", ".join(_BY_NAME)
        raise ConfigError(f"{where}: unknown setting {name!r} (known: {known})")
    try:
        return _BY_NAME[name].parse(value)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: setting {name!r}: {e}") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read settings file {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"settings file {path} is not valid TOML: {e}") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):  # [sensor] networks = … → sensor_networks
            for sub, v in value.items():
                flat[f"{key}_{sub}"] = v
        else:
            flat[key] = value
    return flat


def load_settings(
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    base: Settings | None = None,
) -> Settings:
    """Resolve settings from defaults, a TOML file, ``TEITEN_*`` variables and options.

    The file is ``config_file``, else ``$TEITEN_CONFIG``, else ``./teiten.toml``
    if it exists. Options whose value is ``None`` are ignored.
    """
    env = os.environ if env is None else env
    if base is not None:
        values, origin = dict(base.values), dict(base.origin)
    else:
        values = {s.name: s.default for s in SETTINGS}
        origin = {s.name: "default" for s in SETTINGS}
        path = config_file or (Path(env["TEITEN_CONFIG"]) if env.get("TEITEN_CONFIG") else None)
        if path is None and Path("teiten.toml").is_file():
            path = Path("teiten.toml")
        if path is not None:
            for k, v in _read_file(path).items():
                values[k] = _parse(k, v, str(path))
                origin[k] = str(path)
        for s in SETTINGS:
            key = "TEITEN_" + s.name.upper()
            if key in env:
                values[s.name] = _parse(s.name, env[key], key)
                origin[s.name] = key
    for k, v in (overrides or {}).items():
        if v is None or (isinstance(v, tuple | list) and not v):
            continue
        values[k] = _parse(k, v, "option")
        origin[k] = "option"
    return Settings(values, origin)
