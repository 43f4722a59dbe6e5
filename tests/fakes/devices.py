"""Fake devices on 127.0.0.1 for the back-check tests, each on an ephemeral port.

Every fake is an asyncio server bound to 127.0.0.1 port 0; its :class:`Device`
gives the port the kernel chose and records every connection and every byte a
client sent (so a test can compare them with the prober's send log). The
descriptions are written for these tests: model names and versions follow the
NPA report of 2017-12-19 and the bundled advisories, everything else is made up.

Use them inside one event loop::

    async with Lab() as lab:
        realtek = await lab.realtek()
        ...

or from synchronous code (the CLI tests) with :class:`LabThread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar, cast

T = TypeVar("T")
HOST = "127.0.0.1"

REALTEK_SERVER = "miniupnpd/1.0 UPnP/1.0"
REALTEK_DESCRIPTION = b"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>Wireless Router</friendlyName>
<manufacturer>Realtek Semiconductor</manufacturer>
<manufacturerURL>http://www.realtek.com.tw</manufacturerURL>
<modelDescription>Gateway for Wireless Router</modelDescription>
<modelName>LAN-W300N/R</modelName>
<modelNumber>2.27</modelNumber>
<serialNumber>0000001</serialNumber>
<UDN>uuid:12342409-1234-1234-5678-ee1234cc5678</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<friendlyName>WANDevice</friendlyName><manufacturer>Other</manufacturer>
<modelName>inner</modelName></device></deviceList>
</device>
</root>
"""
# The fake Huawei serves its description only at this (made-up) path, so the
# prober finds it through the SSDP LOCATION.
HUAWEI_PATH = "/description.xml"
HUAWEI_DESCRIPTION = b"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>HG532e</friendlyName>
<manufacturer>Huawei Technologies Co., Ltd.</manufacturer>
<modelName>HG532e</modelName>
<modelNumber>HG532e</modelNumber>
<serialNumber>0123456789</serialNumber>
<UDN>uuid:00e0fc37-2525-2828-2500-0123456789ab</UDN>
</device>
</root>
"""
GENERIC_PAGE = b"<html><head><title>Broadband Router</title></head><body>login</body></html>"
TELNET_GREETING = (
    b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03"  # DO ECHO, DO NAWS, WILL ECHO, WILL SGA
    b"\xff\xfa\x18\x01\xff\xf0"  # SB TERMINAL-TYPE SEND SE
    b"\r\nRealtek Wireless Router\r\nlogin: "
)
GARBAGE = bytes(range(256)) * 3 + b"\x1b[2J\x1b]0;owned\x07\r\n"

Route = tuple[int, bytes]


@dataclass
class Device:
    """A running fake: where it listens and what clients sent it."""

    name: str
    port: int = 0
    proto: str = "tcp"
    connections: int = 0
    received: list[bytes] = field(default_factory=list)


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def closed_udp_port() -> int:
    """A UDP port on 127.0.0.1 with nothing bound (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def _read_request(reader: asyncio.StreamReader, device: Device) -> bytes:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        head = getattr(e, "partial", b"")
    device.received.append(head)
    return head


def _response(status: int, body: bytes, server: str, ctype: str = "text/xml") -> bytes:
    reason = {200: "OK", 404: "Not Found"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\n"
    if server:
        head += f"Server: {server}\r\n"
    head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode("ascii") + body


class _Ssdp(asyncio.DatagramProtocol):
    def __init__(self, device: Device, reply: bytes) -> None:
        self.device, self.reply = device, reply
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.device.connections += 1
        self.device.received.append(data)
        if data.startswith(b"M-SEARCH") and self.transport is not None:
            self.transport.sendto(self.reply, addr)


class Lab:
    """Starts fake devices on 127.0.0.1 and stops them (and their connections) on exit."""

    def __init__(self) -> None:
        self.devices: list[Device] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Lab:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        for transport in self._transports:
            transport.close()
        await asyncio.sleep(0.01)
        self._servers.clear()
        self._transports.clear()

    async def _serve(
        self,
        name: str,
        handler: Callable[[Device, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> Device:
        device = Device(name)

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            device.connections += 1
            try:
                await handler(device, reader, writer)
            except (ConnectionError, TimeoutError, asyncio.CancelledError):
                pass
            finally:
                self._tasks.discard(task)
                writer.close()
                with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                    await writer.wait_closed()

        server = await asyncio.start_server(on_client, HOST, 0)
        self._servers.append(server)
        device.port = int(server.sockets[0].getsockname()[1])
        self.devices.append(device)
        return device

    async def http(self, name: str, routes: dict[str, Route], server: str) -> Device:
        """A plain HTTP server answering ``routes`` (path → status, body), else 404."""

        async def handle(d: Device, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            head = await _read_request(r, d)
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 2 else ""
            status, body = routes.get(path, (404, b"<html>404</html>"))
            ctype = "text/xml" if body.startswith(b"<?xml") else "text/html"
            w.write(_response(status, body, server, ctype))
            await w.drain()

        return await self._serve(name, handle)

    async def realtek(self) -> Device:
        """A Realtek-miniigd-like UPnP device (port standing in for 52869)."""
        return await self.http(
            "realtek", {"/picsdesc.xml": (200, REALTEK_DESCRIPTION)}, REALTEK_SERVER
        )

    async def huawei(self) -> Device:
        """A Huawei-HG532-like UPnP device (port standing in for 37215)."""
        return await self.http("huawei", {HUAWEI_PATH: (200, HUAWEI_DESCRIPTION)}, "")

    async def generic(self) -> Device:
        """A generic router: no description, a titled page at ``/``."""
        return await self.http("generic", {"/": (200, GENERIC_PAGE)}, "httpd")

    async def tarpit(self) -> Device:
        """Accepts, reads whatever comes, never answers."""

        async def handle(d: Device, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while chunk := await r.read(65536):
                d.received.append(chunk)

        return await self._serve("tarpit", handle)

    async def garbage(self) -> Device:
        """Answers any request with non-HTTP bytes and terminal escapes, then closes."""

        async def handle(d: Device, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r, d)
            w.write(GARBAGE)
            await w.drain()

        return await self._serve("garbage", handle)

    async def endless(self) -> Device:
        """Answers with an HTTP head and a body that never ends (until the client leaves)."""

        async def handle(d: Device, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r, d)
            w.write(b"HTTP/1.1 200 OK\r\nServer: endless\r\nContent-Type: text/html\r\n\r\n")
            chunk = b"<p>" + b"A" * 4093
            for _ in range(1 << 14):  # 64 MiB at most, should a client never leave
                w.write(chunk)
                await w.drain()

        return await self._serve("endless", handle)

    async def telnet(self) -> Device:
        """A Telnet server: option negotiation and a login prompt; records what clients send."""

        async def handle(d: Device, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(TELNET_GREETING)
            await w.drain()
            while chunk := await r.read(65536):
                d.received.append(chunk)

        return await self._serve("telnet", handle)

    async def ssdp(self, location: str, server: str = "Linux/2.6 UPnP/1.0 miniupnpd/1.0") -> Device:
        """A UDP responder answering M-SEARCH with ``location`` (other datagrams: recorded)."""
        device = Device("ssdp", proto="udp")
        reply = (
            "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
            f"LOCATION: {location}\r\nSERVER: {server}\r\nST: upnp:rootdevice\r\n"
            "USN: uuid:12342409-1234-1234-5678-ee1234cc5678::upnp:rootdevice\r\n\r\n"
        ).encode("latin-1")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Ssdp(device, reply), local_addr=(HOST, 0)
        )
        self._transports.append(transport)
        device.port = int(transport.get_extra_info("sockname")[1])
        self.devices.append(device)
        return device


class LabThread:
    """A :class:`Lab` running in its own event loop on a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.lab = Lab()

    def __enter__(self) -> LabThread:
        self.thread.start()
        return self

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` (e.g. ``lab.realtek()``) on the lab's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.call(self.lab.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
