"""Staging one input on a Spark executor: no catalog, errors returned, never raised."""

from __future__ import annotations

import functools
from pathlib import Path

from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import CountryEnricher
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.errors import EnrichmentError, FormatError, TeitenError, first_line
from teiten.pipeline import IngestOptions, InputPlan, InputResult, StagedInput, stage
from teiten.store.lake import Lake


class _StagingLake(Lake):
    """The lake as a Spark executor sees it: its root, to write an input's staging folder.

    No catalog is opened (only the driver lists files); any use of one fails.
    """

    def __init__(self, root: Path) -> None:  # deliberately not Lake.__init__: no catalog
        self.root = Path(root)
        self._lock = None
        self._transactions = {}

    def close(self) -> None:
        self._transactions.clear()


@functools.lru_cache(maxsize=4)
def _enrichers(country: str, asn: str) -> tuple[CountryEnricher, AsnEnricher | None]:
    """The enrichers of an executor's Python worker (opened once, kept for its next tasks)."""
    source = open_asn_source(asn)
    return CountryEnricher(open_country_source(country)), (
        AsnEnricher(source) if source is not None else None
    )


ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (FormatError, "format"),
    (EnrichmentError, "enrichment"),
    (TeitenError, "input"),
    (OSError, "store"),
)
"""How an executor names an error for the driver (first match; anything else ``internal``)."""


def error_kind(e: BaseException) -> str:
    """The name :func:`stage_detached` reports an error under."""
    return next((kind for t, kind in ERROR_KINDS if isinstance(e, t)), "internal")


def stage_detached(root: str, settings: IngestOptions, plan: InputPlan) -> StagedInput:
    """:func:`stage` as a Spark task: the lake's root is a path the executor shares with the
    driver; the enrichers come from the options' sources; the catalog is never opened.

    Never raises (a raised task would fail every input of the job): an error
    is returned in the manifest, its staged files removed.
    """
    lake = _StagingLake(Path(root))
    lake.discard(plan.input_id)  # a retried task starts from an empty staging folder
    try:
        enricher, asn = _enrichers(str(settings.country_source), str(settings.asn_source))
        return stage(lake, plan, settings, enricher, None, asn)
    except Exception as e:  # reported by the driver as that input's failure
        text = first_line(e) if str(e).strip() else ""  # bounded: it travels to the driver
        kind = error_kind(e)
        if kind == "internal":
            text = f"{type(e).__name__}: {text}" if text else type(e).__name__
        return StagedInput(
            InputResult(plan.path, "failed", plan.input_id, message=text),
            error=text,
            error_kind=kind,
            errno=e.errno if isinstance(e, OSError) else None,
        )
    finally:
        lake.close()
