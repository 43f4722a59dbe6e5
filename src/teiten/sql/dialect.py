"""The expressions that differ between the SQL engines teiten runs on.

Everything else in ``teiten.sql`` is the common subset of DuckDB and Spark SQL
(4.x): ``CASE``, ``count(DISTINCT …) FILTER (WHERE …)``, ``&``,
``CAST(… AS STRING)``, ``regexp_extract``, ``concat_ws``. A third engine adds
one :class:`Dialect` here, one module in ``teiten.engine`` and one entry in
its registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """Engine-specific SQL pieces, each a function from SQL expressions to SQL."""

    name: str
    timestamp_ns: Callable[[str], str]
    """An int64 ns column as a UTC ``TIMESTAMP`` (µs precision)."""
    ip6_text: Callable[[str], str]
    """A 16-byte binary column as IPv6 text (an engine function named ``teiten_ip6_text``)."""
    non_null_list: Callable[[str], str]
    """The list of the non-null items of a comma-separated SQL list."""
    xor: Callable[[str, str], str]
    """Bitwise XOR of two BIGINT expressions."""
    shr: Callable[[str, int], str]
    """Bitwise shift right of a BIGINT expression (Spark 4 cannot parse ``>>`` inside
    ``array(…)``, so it is spelt ``shiftright``)."""
    intdiv: Callable[[str, str], str]
    """Integer division (towards zero) of two BIGINT expressions."""
    days_to_date: Callable[[str], str]
    """A ``DATE`` from a count of days since 1970-01-01."""
    list_contains: Callable[[str, str], str]
    """True when a list column holds a value."""
    list_len: Callable[[str], str]
    """The number of items in a list column."""
    merged_list: Callable[[str], str]
    """Aggregate: the sorted distinct items of every list in a group."""
    zip_unnest: Callable[[str, str, str, str], str]
    """Select items: one row per position of two parallel lists ``(a, b)``, named ``(x, y)``."""


DUCKDB = Dialect(
    "duckdb",
    timestamp_ns=lambda c: f"make_timestamp({c} // 1000)",
    ip6_text=lambda c: f"teiten_ip6_text({c})",
    non_null_list=lambda items: f"list_filter([{items}], lambda x: x IS NOT NULL)",
    xor=lambda a, b: f"xor({a}, {b})",
    shr=lambda a, n: f"({a} >> {int(n)})",
    intdiv=lambda a, b: f"({a} // {b})",
    days_to_date=lambda n: f"(DATE '1970-01-01' + CAST({n} AS INTEGER))",
    list_contains=lambda col, v: f"list_contains({col}, {v})",
    list_len=lambda col: f"len({col})",
    merged_list=lambda col: f"list_sort(list_distinct(flatten(list({col}))))",
    zip_unnest=lambda a, b, x, y: f"unnest({a}) AS {x}, unnest({b}) AS {y}",
)

SPARK = Dialect(
    "spark",
    timestamp_ns=lambda c: f"timestamp_micros({c} div 1000)",
    ip6_text=lambda c: f"teiten_ip6_text({c})",
    non_null_list=lambda items: f"array_compact(array({items}))",
    xor=lambda a, b: f"({a} ^ {b})",
    shr=lambda a, n: f"shiftright({a}, {int(n)})",
    intdiv=lambda a, b: f"({a} div {b})",
    days_to_date=lambda n: f"date_add(DATE '1970-01-01', CAST({n} AS INT))",
    list_contains=lambda col, v: f"array_contains({col}, {v})",
    list_len=lambda col: f"size({col})",
    merged_list=lambda col: f"array_sort(array_distinct(flatten(collect_list({col}))))",
    zip_unnest=lambda a, b, x, y: (
        f"inline(transform(arrays_zip({a}, {b}), p -> named_struct('{x}', p.{a}, '{y}', p.{b})))"
    ),
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, SPARK)}
