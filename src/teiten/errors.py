"""The exceptions teiten raises for the operator's mistakes.

Bad *packets* never raise: decoders record a reason in the ``decode_error``
column and go on. Exceptions are for things the operator can fix::

    TeitenError
    ├── InputError          an input file is missing, unreadable or not a capture
    │   └── FormatError     a file is not of any format teiten reads
    ├── ConfigError         a setting, option or settings file is wrong
    ├── EnrichmentError     an enrichment source (a .mmdb file) is damaged
    ├── StoreError          the data directory is missing, locked, read-only or damaged
    ├── QueryError          a query failed (bad SQL, unknown view or column)
    └── DependencyError     an optional dependency is not installed

The CLI turns each into a one-line message and a non-zero exit.
"""

from __future__ import annotations


class TeitenError(Exception):
    """Base class of every error teiten raises on purpose."""


class InputError(TeitenError):
    """An input file is missing, unreadable, or of a format teiten cannot read."""


class FormatError(InputError):
    """A file is not of any format teiten reads (a directory's other files are skipped)."""


class ConfigError(TeitenError):
    """A setting, command-line option or settings file is wrong."""


class EnrichmentError(TeitenError):
    """An enrichment source is damaged (found when opened, or during a lookup).

    ``ingest`` stops the run at it (committed inputs stay); nothing is retried.
    """


class StoreError(TeitenError):
    """The data directory is missing, locked by another writer, read-only, or damaged."""


class QueryError(TeitenError):
    """A query over the store failed."""


class NotFoundError(QueryError):
    """A thing asked for by name or id (a session, a campaign, a source) is not stored."""


class DependencyError(TeitenError):
    """An optional dependency is needed but not installed; the message names the extra."""


def first_line(e: BaseException, limit: int = 500) -> str:
    """The first line of an error's text (at most ``limit`` characters), or its type's name."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__
