"""The running sensor: responders on their listen addresses, the event file, and the
ingestion of closed event files and captures into the store, with detection on a schedule.

:func:`run_sensor` runs until SIGTERM or SIGINT. Every ``ingest_interval``
seconds it closes the current event file and ingests every closed file in
``spool/events`` and every ``.pcap``/``.pcapng`` renamed into ``spool/captures``
(in a worker thread, so responders keep answering); a file that was ingested
(or was already in the store) moves to ``ingested/`` beside it, one the ingest
could not read to ``failed/``. After such a round, when something was stored
and ``detect_interval`` seconds have passed since the last run, the same worker
runs the stored detection (alert state, webhooks); it never runs beside an
ingest, and an error is one log line. ``spool/state.json`` keeps the last
ingest and detection for ``teiten sensor status``. After each ingest round the
``ingested/`` folders are pruned (``keep_ingested_days``, ``keep_ingested_gb``:
:mod:`teiten.sensor.retention`). With ``[capture]`` the passive capture
(:mod:`teiten.sensor.capture`) is opened before privileges are dropped and runs
in a thread, publishing rotated files into the capture inbox. On a signal it
stops listening, ends open connections (their events say ``shutdown``), stops
the capture (which publishes its last file), closes the last event file and
ingests everything: no recorded event or captured packet is lost.

Connections beyond :attr:`Limits.max_connections` in all, or beyond
:attr:`Limits.max_per_source` from one address, are closed at once and
counted (``dropped``), not recorded. Nothing a client sends is executed,
evaluated or fetched; the only connections the sensor opens are webhook
deliveries to the operator's ``webhook_url`` (none unless it is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from teiten.app.detect import run_detection
from teiten.app.ingest import ingest
from teiten.config import Settings
from teiten.errors import ConfigError, TeitenError
from teiten.jit import bind_all
from teiten.sensor.blackhole import Blackhole
from teiten.sensor.capture import Capture
from teiten.sensor.config import SensorConfig
from teiten.sensor.events import Event, EventWriter
from teiten.sensor.health import Health
from teiten.sensor.http import Http
from teiten.sensor.huawei_hg532 import HuaweiHg532
from teiten.sensor.metrics import serve
from teiten.sensor.privilege import check_writable, drop_privileges, resolve
from teiten.sensor.responder import Conversation, Responder
from teiten.sensor.retention import prune
from teiten.sensor.telnet import Telnet
from teiten.sensor.upnp_realtek import UpnpRealtek

RESPONDERS: dict[str, Callable[[], Responder]] = {
    "upnp-realtek": UpnpRealtek, "huawei-hg532": HuaweiHg532, "http": Http,
    "telnet": Telnet, "blackhole": Blackhole,
}  # fmt: skip
"""A fresh responder for each connection, by kind."""
CAPTURE_SUFFIXES = (".pcap", ".pcapng")
"""Files of the capture inbox that are ingested; anything else there waits untouched."""
FLUSH_SECONDS = 1.0
SETTLE_SECONDS = 0.05
"""At a stop, how long handlers of connections accepted just before it get to start."""
LOCK_WAIT = 60.0
"""Seconds an ingest waits for another writer of the store before trying next round."""

Log = Callable[[str], None]


def _address(info: object) -> tuple[str, int]:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]).split("%")[0], int(info[1])
    return "", 0


class Sensor:
    """Responders, limits and the event writer of one run."""

    def __init__(self, config: SensorConfig, settings: Settings, log: Log) -> None:
        self.config, self.log = config, log
        self.settings = settings.replace(
            data=str(config.data), sensor=config.name, sensor_networks=list(config.networks),
            lock_wait=max(float(settings.lock_wait), LOCK_WAIT),
        )  # fmt: skip
        self.writer = EventWriter(config.events_dir, config.name)
        self.health = Health()
        self.open: Counter[str] = Counter()
        """Open connections per client address."""
        self.open_total = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.servers: list[asyncio.Server] = []
        self.detect_due = False
        """Something was ingested since the last detection run (or a restart)."""
        self.next_detect = 0.0
        """``time.monotonic()`` from which the next detection run may start."""
        self.capture: Capture | None = None
        """The passive capture (``[capture]``), opened in :meth:`run` before dropping root."""

    async def handle(
        self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        limits = self.config.limits
        src, src_port = _address(writer.get_extra_info("peername"))
        if self.open_total >= limits.max_connections:
            reason = "max_connections"
        elif self.open[src] >= limits.max_per_source:
            reason = "max_per_source"
        else:
            reason = ""
        if reason:
            self.health.dropped[reason] += 1
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.open[src] += 1
        self.open_total += 1
        self.health.connections += 1
        conn = Conversation(reader, writer, limits)
        start = time.time_ns()
        try:
            async with asyncio.timeout(limits.total_timeout):
                await RESPONDERS[kind]().converse(conn)
            conn.end = conn.end or "closed"
        except TimeoutError:
            conn.end = "total"
        except asyncio.CancelledError:
            conn.end = "shutdown"
        except (ConnectionError, OSError):
            conn.end = "error"
        except Exception as e:  # a responder's bug must not end the sensor or print a traceback
            conn.end = "bug"
            self.log(f"{kind} responder failed: {type(e).__name__} (connection recorded)")
        finally:
            if conn.end == "closed":
                writer.close()
            else:
                writer.transport.abort()
            self.open[src] -= 1
            self.open_total -= 1
            if not self.open[src]:
                del self.open[src]
            self.tasks.discard(task)
            dst, dst_port = _address(writer.get_extra_info("sockname"))
            self.record(Event(self.config.name, kind, src, src_port, dst, dst_port, start,
                              time.time_ns(), bytes(conn.client), conn.client_total,
                              bytes(conn.server), conn.end))  # fmt: skip

    def record(self, event: Event) -> None:
        try:
            self.writer.write(event)
        except OSError as e:
            self.health.dropped["event_write_failed"] += 1
            self.log(f"cannot write event: {e.strerror}")
            return
        self.health.events += 1
        self.health.ended[event.end] += 1
        self.health.client_bytes += event.client_total

    async def listen(self, start: bool = True) -> None:
        """Bind every responder address (and metrics); accept connections only with ``start``."""
        for r in self.config.responders:
            for a in r.listen:

                async def on_client(
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str = r.kind
                ) -> None:
                    await self.handle(kind, reader, writer)

                family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
                try:
                    server = await asyncio.start_server(
                        on_client, a.host, a.port, family=family, reuse_address=True,
                        backlog=1024, limit=self.config.limits.max_line, start_serving=False,
                    )  # fmt: skip
                except OSError as e:
                    hint = " (ports below 1024 need CAP_NET_BIND_SERVICE)" if a.port < 1024 else ""
                    raise ConfigError(
                        f"{r.kind}: cannot listen on {a}: {e.strerror}{hint}"
                    ) from None
                self.servers.append(server)
                self.log(f"{r.kind}: listening on {a}")
        if (m := self.config.metrics) is not None:
            try:
                server = await asyncio.start_server(
                    self.metrics, m.host, m.port, reuse_address=True, start_serving=False
                )
            except OSError as e:
                raise ConfigError(f"metrics: cannot listen on {m}: {e.strerror}") from None
            self.servers.append(server)
            self.log(f"metrics: http://{m}/metrics")
        if start:
            for server in self.servers:
                await server.start_serving()

    async def metrics(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one request on the loopback metrics address (never recorded as an event)."""
        conn = Conversation(reader, writer, self.config.limits)
        try:
            async with asyncio.timeout(self.config.limits.total_timeout):
                await serve(conn, self.health, self.open_total)
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def inbox(self) -> list[Path]:
        """Closed files waiting: event files, then captures renamed into the inbox."""
        events = sorted(self.config.events_dir.glob("*.jsonl"))
        captures = sorted(
            p for p in self.config.captures_dir.glob("*")
            if p.suffix in CAPTURE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )  # fmt: skip
        return events + captures

    async def ingest_closed(self) -> None:
        """Close the current event file and ingest every closed file waiting (in a thread)."""
        self.writer.rotate()
        files = self.inbox()
        if not files:
            return
        try:
            result = await asyncio.to_thread(ingest, files, self.settings, spark=False)
        except TeitenError as e:  # the store is busy or unwritable: the files wait
            self.log(f"ingest failed, will retry: {e}")
            return
        except Exception as e:  # never end the sensor or print a traceback: the files wait
            text = str(e).strip().splitlines()[0] if str(e).strip() else ""
            self.log(f"ingest failed, will retry: {type(e).__name__}: {text}")
            return
        # A run stopped by the store (full disk) names the input it stopped at: that waits.
        for r in result.inputs[:-1] if result.error else result.inputs:
            path = Path(r.path)
            folder = path.parent
            if r.status in ("ingested", "stopped", "duplicate"):
                target, self.health.files_ingested = "ingested", self.health.files_ingested + 1
                if folder == self.config.captures_dir:
                    self.health.captures_ingested += 1
                self.detect_due = True
            else:  # failed, or not recognised (an event file damaged by a crash, not a capture)
                target, self.health.files_failed = "failed", self.health.files_failed + 1
                self.log(f"{path.name}: not ingested ({r.status}): {r.message}")
            try:
                (folder / target).mkdir(exist_ok=True)
                os.replace(path, folder / target / path.name)
                os.utime(folder / target / path.name)  # retention counts from now
            except OSError as e:
                self.log(f"{path.name}: cannot move to {target}/: {e.strerror}")
        if result.error:
            self.log(f"ingest stopped, will retry: {result.error}")
        elif result.inputs:
            n = sum(r.sessions for r in result.inputs)
            self.health.last_ingest = time.time()
            self.log(f"ingested {len(result.inputs)} file(s), {n} session(s)")

    async def detect(self) -> None:
        """Stored detection (alert state, webhooks) of all data, in a thread; one line on error."""
        self.detect_due = False
        self.next_detect = time.monotonic() + self.config.detect_interval
        try:
            result = await asyncio.to_thread(run_detection, self.settings)
        except TeitenError as e:
            self.health.detections_failed += 1
            self.log(f"detection failed, will retry: {e}")
            self.detect_due = True
            return
        except Exception as e:  # a store or engine error: never end the sensor, no traceback
            self.health.detections_failed += 1
            text = str(e).strip().splitlines()[0] if str(e).strip() else ""
            self.log(f"detection failed, will retry: {type(e).__name__}: {text}")
            self.detect_due = True
            return
        self.health.detections += 1
        self.health.last_detection = time.time()
        self.health.alerts_open = sum(1 for a in result.alerts if a.state != "ended")
        new = sum(1 for a in result.alerts if a.state == "new")
        failed = sum(1 for d in result.deliveries if not d.get("delivered"))
        note = f", {failed} webhook delivery(ies) failed" if failed else ""
        self.log(f"detection: {len(result.found)} alert(s) found, {new} new, "
                 f"{self.health.alerts_open} open{note}")  # fmt: skip

    async def round(self, detect: bool = True) -> None:
        """One worker round: ingest, then detection when due (never beside an ingest).

        Detection is due when ``detect_interval`` is set, something was ingested since
        the last run, and ``detect_interval`` seconds have passed since it started.
        """
        await self.ingest_closed()
        await self.prune()
        every = self.config.detect_interval
        if detect and every and self.detect_due and time.monotonic() >= self.next_detect:
            await self.detect()
        self.save_state()

    async def prune(self) -> None:
        """Apply ``keep_ingested_days``/``keep_ingested_gb`` to the ``ingested/`` folders
        (in a thread, like ingest: listing and removing files never blocks the responders)."""
        c = self.config
        folders = [c.events_dir / "ingested", c.captures_dir / "ingested"]
        done = await asyncio.to_thread(
            prune, folders, c.keep_ingested_days, int(c.keep_ingested_gb * 1e9), time.time()
        )
        self.health.ingested_removed += done.files
        self.health.ingested_removed_bytes += done.bytes
        for line in done.errors[:3]:
            self.log(f"cannot remove ingested file {line}")

    def warm_up(self) -> None:
        """Ingest and detect one made-up event in a throwaway store, before dropping root.

        Ingest, the compiled decoders and detection load code on first use; doing it
        once here means nothing needs to be read from the installation afterwards, so
        one only root can read keeps working as ``user``. No webhook is sent.
        """
        bind_all()  # numba kernels pick their cache folder now, as root
        with tempfile.TemporaryDirectory(prefix="teiten-sensor-warm-up-") as tmp:
            folder = Path(tmp)
            writer = EventWriter(folder / "events", self.config.name)
            request = b"POST /picsdesc.xml HTTP/1.1\r\nSOAPAction: x#AddPortMapping\r\n\r\n"
            now = time.time_ns()
            writer.write(Event(self.config.name, "upnp-realtek", "198.51.100.1", 40000,
                               "192.0.2.2", 52869, now, now, request, len(request),
                               b"HTTP/1.1 200 OK\r\n\r\n", "closed"))  # fmt: skip
            closed = writer.rotate()
            settings = self.settings.replace(data=str(folder / "data"), webhook_url="")
            try:
                ingest([closed] if closed else [], settings, spark=False)
                run_detection(settings)
            except Exception as e:  # a warm-up failure is reported; the real rounds decide
                self.log(f"warm-up before dropping privileges: {type(e).__name__}: {e}")

    def save_state(self) -> None:
        """Write ``spool/state.json`` atomically (read by ``teiten sensor status``)."""
        path = self.config.state_path
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps(self.health.state()))
            os.replace(tmp, path)
        except OSError as e:
            self.log(f"cannot write {path.name}: {e.strerror}")

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        identity = resolve(config.user, config.group) if config.user is not None else None
        if config.capture is not None:  # the packet socket needs CAP_NET_RAW: open it now
            self.capture = Capture(config, self.health, self.log)
        await self.listen(start=False)  # bound, not accepting: no client byte before the drop
        if identity is not None:
            if os.geteuid() == 0:
                await asyncio.to_thread(self.warm_up)
            drop_privileges(identity)
            self.log(f"running as {identity.user} (uid {identity.uid}, gid {identity.gid})")
        check_writable([config.spool, config.events_dir, config.captures_dir])
        for path in self.writer.recover():
            self.log(f"{path.name}: closed a file a previous run left open")
        for server in self.servers:
            await server.start_serving()
        if self.capture is not None:
            self.capture.start()
        self.log("ready")
        self.detect_due = self.config.data.is_dir()  # a restart detects once
        next_ingest = time.monotonic() + self.config.ingest_interval
        ingesting: asyncio.Task[None] | None = None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            self.writer.flush()
            if time.monotonic() >= next_ingest and (ingesting is None or ingesting.done()):
                if ingesting is not None:
                    ingesting.result()
                ingesting = asyncio.create_task(self.round())
                next_ingest = time.monotonic() + self.config.ingest_interval
        self.log("stopping")
        for server in self.servers:
            server.close()
        # Connections accepted just before the close start their handler a loop turn or
        # two later; each handler joins ``tasks`` before its first await. Wait for them
        # too, or an event they record would miss the last round's ingest.
        await asyncio.sleep(SETTLE_SECONDS)
        while self.tasks:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.wait(list(self.tasks))
            await asyncio.sleep(0)
        if self.capture is not None:  # publishes the current file for the last round
            await asyncio.to_thread(self.capture.stop)
        if ingesting is not None:
            await ingesting
        await self.round(detect=False)


def run_sensor(config: SensorConfig, settings: Settings, log: Log) -> Health:
    """Run the sensor in the foreground until SIGTERM or SIGINT (see the module notes)."""
    sensor = Sensor(config, settings, log)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await sensor.run(stop)

    asyncio.run(main())
    return sensor.health
