"""Exports and deliveries: webhooks, and the STIX 2.1 feed (``stix``,
``tlp``). Everything here is published output and goes through :mod:`teiten.secrecy`."""
