"""Every SQL statement teiten runs, written once, for every engine.

The statements are functions of a :class:`~teiten.sql.dialect.Dialect` (the
few expressions DuckDB and Spark SQL spell differently) and of plain values;
they return text. Engines (``teiten.engine``) run the text; the analysis and
report code builds no SQL of its own. The parity test runs each statement on
DuckDB and on Spark and requires the same rows (``tests/integration/test_engine_parity.py``).
"""
