"""The sensor: responders that answer attackers on chosen ports and feed the store.

See docs/sensor.md.
"""
