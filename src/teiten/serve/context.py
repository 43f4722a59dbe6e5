"""What every request of ``teiten serve`` shares: settings, options, and cached facts.

The server is read only. Facts that cost a scan of the store (the sensor's own
addresses, which the secrecy policy masks; the report a campaign page is cut
from) are computed once per *data version* — the catalog's size and time — and
computed again when an ingest or ``teiten detect`` changes the store.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from teiten.app.engine import EnginePool, store_version
from teiten.config import Settings
from teiten.secrecy import Secrecy

T = TypeVar("T")

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeOptions:
    """How the server runs: who may read, what it reveals, how fast one client may ask."""

    internal: bool = False
    """Keep sensor addresses in pages and answers (else masked by the secrecy policy)."""
    token: str = ""
    """Required as ``Authorization: Bearer …`` (or HTTP basic password) when not empty."""
    rate: float = 20.0
    """Requests per second one client may make, on average."""
    burst: int = 60
    """Requests one client may make at once before the rate applies."""
    advisories: tuple[str, ...] = ()
    """Folders of advisory files used besides the bundled ones."""
    warm: bool = False
    """Compute what the first visitor would wait for (the sensor's addresses, the report of
    all data) in the background when the server starts (``teiten serve`` does)."""
    sensor_config: str = ""
    """A sensor's config file: its health is shown on the overview page (empty: none)."""


@dataclass
class Context:
    """The settings and options of one server, and facts cached per data version."""

    settings: Settings
    options: ServeOptions = field(default_factory=ServeOptions)
    engines: EnginePool = field(default_factory=EnginePool)
    """Engines kept open between requests (reopened when the store changes)."""
    _cache: dict[str, tuple[tuple[int, ...], Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _computing: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    def data_version(self) -> tuple[int, ...]:
        """The store's version: cached facts are computed again when it changes."""
        return store_version(self.settings.data_dir)

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept until the data version changes; computed once at a time
        per key (a second request waits for the first one's answer)."""
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            version = self.data_version()
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]  # type: ignore[no-any-return]
            value = compute()
            self._cache[key] = (version, value)
            return value

    def sensor_addresses(self) -> set[str]:
        """Every address that received traffic (a scan of the store, cached)."""
        from teiten.app.payloads import sensor_addresses

        return self.cached("sensor_addresses", lambda: sensor_addresses(self.settings))

    def secrecy(self) -> Secrecy:
        """The sensor's networks (setting) and every address that received traffic."""
        from teiten.app.payloads import sensor_secrecy

        return self.cached(
            "secrecy", lambda: sensor_secrecy(self.settings, self.sensor_addresses())
        )

    def publish(self, obj: Any) -> Any:
        """``obj`` with every sensor address masked, unless the server runs ``--internal``."""
        if self.options.internal:
            return obj
        return self.secrecy().redact_data(obj)
