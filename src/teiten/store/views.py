"""Moved to ``teiten.sql`` (issue #13): a transitional alias; nothing new imports it."""

from __future__ import annotations

from teiten.sql.dialect import DUCKDB, SPARK, Dialect
from teiten.sql.expressions import PROTO_NAMES, port_rule, proto_text
from teiten.sql.views import packets_view, raw_view

__all__ = [
    "DUCKDB",
    "PROTO_NAMES",
    "SPARK",
    "Dialect",
    "packets_view",
    "port_rule",
    "proto_text",
    "raw_view",
]
