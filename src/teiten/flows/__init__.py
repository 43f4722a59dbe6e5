"""Sessions from captures: bounded reassembly of what clients sent.

Flows only reassemble: they give :class:`teiten.session.Session` records (client
bytes, endpoints, times, counts). Classifying and enriching them is the
pipeline's business (:mod:`teiten.pipeline`), the same as for the sessions read
from Cowrie logs and the sensor's event files.
"""
