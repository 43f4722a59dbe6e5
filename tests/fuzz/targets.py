"""The fuzz targets: each feeds one input to one reader or parser, the way teiten does.

A target returns normally or raises :class:`~teiten.errors.TeitenError` (a clear,
one-line refusal); anything else is a bug. Used by the hypothesis tests in this
folder and by the atheris entry points of ``scripts/fuzz``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from teiten.advisories.csaf import import_csaf
from teiten.capture import open_source
from teiten.capture.cowrie import read_cowrie
from teiten.classify import classify
from teiten.classify.http import parse_http
from teiten.classify.soap import parse_soap
from teiten.classify.telnet import logins, parse_telnet
from teiten.decode.decoder import decode
from teiten.enrich.country import CountryEnricher
from teiten.enrich.mmdb import PROBES, MmdbFile
from teiten.enrich.sources import open_country_source
from teiten.errors import TeitenError
from teiten.pipeline.sessions import session_tables

SESSION_CAP = 64 << 10
"""Client bytes a reassembled session holds at most (the default ``session_bytes``)."""


def capture(path: Path) -> int:
    """Read and decode every record of a capture file (any container, any compression)."""
    source = open_source(path, chunk_bytes=1 << 16)
    rows = 0
    for chunk in source.chunks():
        batch = decode(chunk)
        assert len(batch.columns["ts"]) == len(chunk)
        rows += len(chunk)
    return rows


def cowrie(path: Path) -> int:
    """Import a Cowrie JSON log and classify its sessions as ingest does."""
    result = read_cowrie(path)
    enricher = CountryEnricher(open_country_source("iptocc"))
    return session_tables(result.sessions, enricher)[0].num_rows


def payload(data: bytes) -> int:
    """Classify client bytes as a session would hold them, and run each parser on them."""
    data = data[:SESSION_CAP]
    found = 0
    for port in (80, 23, 52869, None):
        found += len(classify(data, dst_port=port, server_bytes=data[:4096]).signatures)
    parse_http(data)
    parse_soap(data, "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping")
    logins(parse_telnet(data, data[:4096]))
    return found


def csaf(path: Path) -> str:
    """Import a CSAF advisory (not saved)."""
    return import_csaf(path).advisory.id


def mmdb(path: Path) -> int:
    """Open an mmdb file and look up the probes and a few more addresses."""
    with MmdbFile(path) as db:
        return sum(r is not None for r in db.records([*PROBES, "not an address", "1.1.1.1"]))


TARGETS: dict[str, Callable[[Path], object]] = {
    "capture": capture,
    "compressed": capture,
    "cowrie": cowrie,
    "payload": lambda p: payload(p.read_bytes()),
    "csaf": csaf,
    "mmdb": mmdb,
}
"""Corpus kind (a folder of :mod:`make_corpus`) → the target its files go to."""


def outcome(target: Callable[[Path], object], path: Path) -> str:
    """``"ok"`` or ``"refused: <message>"``; any other exception propagates (a bug)."""
    try:
        target(path)
    except TeitenError as e:
        message = str(e)
        assert message and "\n" not in message.strip(), f"not one line: {message!r}"
        return f"refused: {message}"
    return "ok"
