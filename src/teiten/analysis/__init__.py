"""Analysis over the store: per-port series, rankings (and later surges, campaigns)."""
