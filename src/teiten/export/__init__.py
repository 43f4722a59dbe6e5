"""Exports and deliveries: webhooks (and later STIX, CSV/JSON)."""
