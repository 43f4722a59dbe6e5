"""Opens enrichment sources from spec strings: ``iptocc``, ``rir:PATH[,PATH…]``, ``mmdb:PATH``.

* ``iptocc`` (also the empty spec, the default): the ``iptocc`` package's RIR
  data; countries only;
* ``rir:PATH[,PATH…]``: RIR statistics files (:class:`~teiten.enrich.rir.RirSource`;
  the first file wins where they overlap); countries only;
* ``mmdb:PATH``: a MaxMind DB file (:mod:`teiten.enrich.mmdb`): countries from a
  country or city database, AS numbers and organisations from an ASN database;
* ``none``: no source (for AS numbers only).

A bad spec raises :class:`~teiten.errors.ConfigError`; a missing or unreadable
file :class:`~teiten.errors.InputError`; ``mmdb:`` without the ``maxminddb``
package :class:`~teiten.errors.DependencyError`.
"""

from __future__ import annotations

from pathlib import Path

from teiten.enrich.asn import AsnSource
from teiten.enrich.country import CountrySource, IptoccSource
from teiten.errors import ConfigError

DEFAULT = "iptocc"
FORMS = "iptocc, rir:PATH[,PATH…] or mmdb:PATH"


def parse_spec(spec: str) -> tuple[str, list[Path]]:
    """The kind (``iptocc``, ``rir``, ``mmdb``, ``none``) and paths of a spec string."""
    text = spec.strip()
    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower() or DEFAULT
    if kind in ("iptocc", "none"):
        if colon:
            raise ConfigError(f"enrichment source {spec!r}: {kind} takes no path")
        return kind, []
    if kind not in ("rir", "mmdb"):
        raise ConfigError(f"unknown enrichment source {spec!r} (expected {FORMS})")
    parts = rest.split(",") if kind == "rir" else [rest]
    paths = [Path(p.strip()).expanduser() for p in parts if p.strip()]
    if not paths:
        raise ConfigError(f"enrichment source {spec!r}: no file named after '{kind}:'")
    return kind, paths


def open_country_source(spec: str = DEFAULT) -> CountrySource:
    """The country source a spec names, its files read or opened."""
    kind, paths = parse_spec(spec)
    if kind == "iptocc":
        return IptoccSource()
    if kind == "rir":
        from teiten.enrich.rir import RirSource

        return RirSource(paths)
    if kind == "mmdb":
        from teiten.enrich.mmdb import MmdbCountrySource

        return MmdbCountrySource(paths[0])
    raise ConfigError(f"enrichment source {spec!r} gives no country (expected {FORMS})")


def open_asn_source(spec: str) -> AsnSource | None:
    """The AS source a spec names, or None for specs without AS data (``iptocc``, ``rir:``)."""
    kind, paths = parse_spec(spec)
    if kind != "mmdb":
        return None
    from teiten.enrich.mmdb import MmdbAsnSource

    return MmdbAsnSource(paths[0])
