"""The use cases: what a command does, from settings to a result, stored state or a delivery.

The library packages below (``analysis``, ``report``, ``export``, ``backcheck``,
``enrich``, ``pipeline``) take engines, tables and plain values; only this
layer reads :class:`~teiten.config.Settings`, opens the store and an engine,
persists results and delivers them. The CLI, the sensor and the demo call it.
"""
