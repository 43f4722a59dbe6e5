"""The sensor's own health in the Prometheus text format, served on a loopback address.

``GET /metrics`` on the ``metrics`` address of ``[sensor]`` (loopback only: the
config refuses anything else) answers :func:`render` of the running sensor's
counters; any other request gets 404. Requests are read with the same limits
as the responders'.
"""

from __future__ import annotations

from teiten.sensor.health import Health
from teiten.sensor.http import read_request, response
from teiten.sensor.responder import Conversation

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(health: Health, open_now: int) -> bytes:
    """The counters as Prometheus exposition text."""
    out: list[str] = []

    def metric(name: str, kind: str, text: str, values: dict[str, int]) -> None:
        out.extend([f"# HELP teiten_sensor_{name} {text}", f"# TYPE teiten_sensor_{name} {kind}"])
        for labels, value in values.items():
            out.append(f"teiten_sensor_{name}{labels} {value}")

    metric(
        "connections_total",
        "counter",
        "Connections accepted and recorded.",
        {"": health.connections},
    )
    metric("open_connections", "gauge", "Connections open now.", {"": open_now})
    metric("events_total", "counter", "Events written to event files.", {"": health.events})
    metric(
        "client_bytes_total",
        "counter",
        "Bytes clients sent (read, within limits).",
        {"": health.client_bytes},
    )
    metric(
        "dropped_total",
        "counter",
        "Connections closed unrecorded, by reason.",
        {f'{{reason="{k}"}}': v for k, v in sorted(health.dropped.items())},
    )
    metric(
        "ended_total",
        "counter",
        "Recorded connections by how they ended.",
        {f'{{reason="{k}"}}': v for k, v in sorted(health.ended.items())},
    )
    metric(
        "files_ingested_total",
        "counter",
        "Event files ingested into the store.",
        {"": health.files_ingested},
    )
    metric("files_failed_total", "counter", "Event files that could not be ingested.",
           {"": health.files_failed})  # fmt: skip
    metric("captures_ingested_total", "counter", "Capture files ingested from spool/captures.",
           {"": health.captures_ingested})  # fmt: skip
    metric("detections_total", "counter", "Scheduled detection runs that finished.",
           {"": health.detections})  # fmt: skip
    metric("detections_failed_total", "counter", "Scheduled detection runs that failed.",
           {"": health.detections_failed})  # fmt: skip
    metric("alerts_open", "gauge", "Stored alerts not ended after the last detection run.",
           {"": health.alerts_open})  # fmt: skip
    metric("last_ingest_timestamp_seconds", "gauge", "Unix time of the last ingest that stored "
           "something (0: none).", {"": round(health.last_ingest)})  # fmt: skip
    metric("last_detection_timestamp_seconds", "gauge", "Unix time of the last detection run "
           "(0: none).", {"": round(health.last_detection)})  # fmt: skip
    for key, kind, text in CAPTURE_METRICS:
        metric(key, kind, text, {"": getattr(health, key.removesuffix("_total"))})
    return ("\n".join(out) + "\n").encode()


CAPTURE_METRICS = (
    ("capture_running", "gauge", "1 while the passive capture runs."),
    ("capture_packets_total", "counter", "Packets the capture took from the kernel's ring."),
    ("capture_bytes_total", "counter", "Wire length of the captured packets."),
    ("capture_file_bytes_total", "counter", "Bytes written to capture files."),
    ("capture_files_total", "counter", "Capture files published into spool/captures."),
    ("capture_kernel_packets_total", "counter",
     "Packets the kernel passed through the capture filter, dropped ones included."),
    ("capture_kernel_drops_total", "counter",
     "Packets the kernel dropped because the capture ring was full."),
    ("capture_freeze_q_total", "counter", "Times the kernel froze the capture ring's queue."),
    ("ingested_removed_total", "counter",
     "Ingested files removed from the spool (keep_ingested_days, keep_ingested_gb)."),
    ("ingested_removed_bytes_total", "counter", "Bytes of the ingested files removed."),
)  # fmt: skip
"""Capture and retention metrics: name (``teiten_sensor_`` + it), type, help; the
:class:`Health` field is the name without ``_total``."""


async def serve(conn: Conversation, health: Health, open_now: int) -> None:
    """Answer one request on the metrics address."""
    req = await read_request(conn)
    if req is None:
        return
    if req.method == "GET" and req.path.split("?")[0] == "/metrics":
        body = render(health, open_now)
        await conn.write(response(200, "OK", body, server="teiten", ctype=CONTENT_TYPE))
    else:
        await conn.write(response(404, "Not Found", b"", server="teiten"))
