"""The store: a Parquet lake partitioned by day, its catalog, and the query engines."""
