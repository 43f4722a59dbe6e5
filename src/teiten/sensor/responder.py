"""The one interface every responder implements, and the bounded connection it talks over.

A responder is an object with a ``kind`` and an ``async converse(conn)`` that
reads from and writes to a :class:`Conversation`. The conversation enforces
the limits (bytes per connection, bytes per line, idle timeout), records what
each side sent for the event, and never raises on the client's behaviour: a
read past a limit, an idle client or a reset simply ends the input
(:attr:`Conversation.end` says why). Responders never execute, evaluate or
fetch anything they receive, and never open a connection.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from teiten.sensor.config import Limits
from teiten.sensor.events import SERVER_CAP

_CHUNK = 4096


class Conversation:
    """One client connection with its limits and the bytes both sides sent."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits
    ) -> None:
        self.reader, self.writer, self.limits = reader, writer, limits
        self.client = bytearray()
        self.server = bytearray()
        self.client_total = 0
        self.end = ""
        self._pending = bytearray()

    @property
    def done(self) -> bool:
        """Whether the input has ended (EOF, a limit, or a timeout)."""
        return bool(self.end) and not self._pending

    async def _fill(self) -> bool:
        """Read one chunk into the pending buffer; False once the input has ended."""
        if self.end:
            return False
        room = self.limits.max_bytes - self.client_total
        if room <= 0:
            self.end = "bytes"
            return False
        try:
            data = await asyncio.wait_for(
                self.reader.read(min(_CHUNK, room)), self.limits.idle_timeout
            )
        except TimeoutError:
            self.end = "idle"
            return False
        except (ConnectionError, OSError):
            self.end = "error"
            return False
        if not data:
            self.end = "closed"
            return False
        self.client_total += len(data)
        self.client += data
        self._pending += data
        return True

    async def read(self, n: int = _CHUNK) -> bytes:
        """Up to ``n`` bytes the client sent; empty once the input has ended."""
        if not self._pending:
            await self._fill()
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    async def read_until(self, marks: tuple[bytes, ...], limit: int) -> bytes:
        """Bytes up to and including the first of ``marks``, at most ``limit`` bytes
        (a longer run is cut there); what is left at the end of input otherwise."""
        while True:
            ends = [i + len(m) for m in marks if (i := self._pending.find(m)) >= 0]
            if ends or len(self._pending) >= limit or not await self._fill():
                cut = min([*ends, limit, len(self._pending)])
                out = bytes(self._pending[:cut])
                del self._pending[:cut]
                return out

    async def readline(self) -> bytes:
        """One line (CR, LF or NUL ends it), at most :attr:`Limits.max_line` bytes."""
        return await self.read_until((b"\n", b"\r", b"\x00"), self.limits.max_line)

    async def read_exactly(self, n: int) -> bytes:
        """``n`` bytes, or fewer when the input ends first."""
        while len(self._pending) < n and await self._fill():
            pass
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    async def write(self, data: bytes) -> None:
        """Send ``data`` (a peer that stops reading ends the conversation at the idle timeout)."""
        if len(self.server) < SERVER_CAP:
            self.server += data[: SERVER_CAP - len(self.server)]
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.limits.idle_timeout)
        except TimeoutError:
            self.end = self.end or "idle"
        except (ConnectionError, OSError):
            self.end = self.end or "error"


class Responder(Protocol):
    """What every responder module provides."""

    kind: str

    async def converse(self, conn: Conversation) -> None:
        """Talk to one client until done; the caller closes the connection and records it."""
