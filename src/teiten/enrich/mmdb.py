"""Country and autonomous system from MaxMind DB (``.mmdb``) files, as enrichment sources.

Reads the files of MaxMind (GeoLite2/GeoIP2 Country, City, ASN), DB-IP,
IPinfo and ip-location-db with the ``maxminddb`` package (the optional extra
``teiten[mmdb]``, imported only when a file is opened). Vendors name the same
things differently, so each answer is taken from the first key present:

* country: ``country.iso_code``, then ``registered_country.iso_code``, then a
  flat ``country`` or ``country_code`` two-letter string;
* AS number: ``autonomous_system_number``, ``asn`` or ``as_number`` (an integer
  or text such as ``"AS64496"``), also under ``traits``;
* organisation: ``autonomous_system_organization``, ``as_name``, ``as_org``,
  ``as_organization`` or ``organization``, also under ``traits``.

``version`` is the database type and build date from the file's metadata,
e.g. ``GeoLite2-Country 2024-05-21``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from teiten.enrich.asn import MAX_ASN, Answer
from teiten.errors import DependencyError, EnrichmentError, InputError, first_line

EXTRA = "teiten[mmdb]"
NUMBER_KEYS = ("autonomous_system_number", "asn", "as_number")
ORG_KEYS = (
    "autonomous_system_organization",
    "as_name",
    "as_org",
    "as_organization",
    "organization",
)


def _maxminddb() -> ModuleType:
    try:
        import maxminddb
    except ImportError:
        raise DependencyError(
            f"reading .mmdb files needs the maxminddb package: pip install '{EXTRA}'"
        ) from None
    return maxminddb


def _cc(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def country_of(record: Mapping[str, Any]) -> str | None:
    """The two-letter country of one database record, or None."""
    for key in ("country", "registered_country"):
        value = record.get(key)
        cc = _cc(value.get("iso_code")) if isinstance(value, Mapping) else _cc(value)
        if cc:
            return cc
    return _cc(record.get("country_code"))


def _number(value: Any) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        text = text[2:] if text[:2].upper() == "AS" else text
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ASN:
        return value
    return None


def asn_of(record: Mapping[str, Any]) -> Answer:
    """The AS number and organisation of one database record (None where absent)."""
    places = [record]
    if isinstance(record.get("traits"), Mapping):
        places.append(record["traits"])
    number = next(
        (n for p in places for k in NUMBER_KEYS if (n := _number(p.get(k))) is not None), None
    )
    org = next(
        (
            v.strip()
            for p in places
            for k in ORG_KEYS
            if isinstance(v := p.get(k), str) and v.strip()
        ),
        None,
    )
    return number, org


PROBES = (
    [f"{a}.{(a * 7) % 256}.{(a * 13) % 256}.{(a * 29) % 256}" for a in range(256)]
    + [f"{a}.255.255.255" for a in range(256)]
    + ["::", "::1", "2001:db8::1", "2400:cb00::1", "2a00:1450::1", "ffff:ffff::1"]
)
"""Addresses looked up once when a file is opened, to find a damaged search tree or data
section before any input is read (a spread over every IPv4 /8, and some IPv6)."""


def _damage(path: Path, e: BaseException) -> EnrichmentError:
    first = first_line(e)
    return EnrichmentError(f"{path}: damaged MaxMind DB file ({first[:160]})")


class MmdbFile:
    """One opened ``.mmdb`` file: its records by address, and its version.

    A file that cannot be opened, whose metadata is out of range, or whose
    probe lookups (:data:`PROBES`) fail raises :class:`EnrichmentError` at
    once; a damaged part that the probes missed raises it at the lookup that
    reaches it. Files come from the operator but may be fuzzed or cut short.
    """

    name = "mmdb"

    def __init__(self, path: str | Path) -> None:
        maxminddb = _maxminddb()
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        try:
            self._reader: Any = maxminddb.open_database(str(self.path))
        except OSError as e:
            raise InputError(f"{self.path}: cannot read: {e.strerror or e}") from None
        except (maxminddb.InvalidDatabaseError, ValueError):
            raise InputError(f"{self.path}: not a MaxMind DB file") from None
        except Exception as e:
            raise _damage(self.path, e) from None
        try:
            meta = self._reader.metadata()
            self.database_type = str(meta.database_type)
            built = datetime.fromtimestamp(int(meta.build_epoch), UTC).date().isoformat()
            self.records(PROBES)
        except EnrichmentError:
            self._reader.close()
            raise
        except Exception as e:
            self._reader.close()
            raise _damage(self.path, e) from None
        self.version = f"{self.database_type} {built}"

    def records(self, addresses: list[str]) -> list[Mapping[str, Any] | None]:
        """The record of each text address (None: not covered, not an address, or IPv6
        in an IPv4-only file). A damaged file raises :class:`EnrichmentError`."""
        get = self._reader.get
        invalid = _maxminddb().InvalidDatabaseError
        out: list[Mapping[str, Any] | None] = []
        for text in addresses:
            try:
                record = get(text)
            except invalid as e:
                raise _damage(self.path, e) from None
            except ValueError:
                record = None  # not an address, or IPv6 in an IPv4 file
            except Exception as e:
                raise _damage(self.path, e) from None
            out.append(record if isinstance(record, Mapping) else None)
        return out

    def close(self) -> None:
        """Release the file (lookups after this fail)."""
        self._reader.close()

    def __enter__(self) -> MmdbFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MmdbCountrySource(MmdbFile):
    """Country of addresses from a country, city or combined ``.mmdb`` file."""

    def lookup(self, addresses: list[str]) -> list[str | None]:
        return [country_of(r) if r else None for r in self.records(addresses)]


class MmdbAsnSource(MmdbFile):
    """AS number and organisation of addresses from an ASN (or combined) ``.mmdb`` file."""

    def lookup(self, addresses: list[str]) -> list[Answer]:
        return [asn_of(r) if r else (None, None) for r in self.records(addresses)]
