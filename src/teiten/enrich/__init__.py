"""Enrichment of sources at ingest: the country each address is allocated to."""
