"""``blackhole``: accept, record what the client sends first, close on timeout or limit."""

from __future__ import annotations

from teiten.sensor.responder import Conversation


class Blackhole:
    """Says nothing; keeps reading (bounded) until the client stops or a limit is hit."""

    kind = "blackhole"

    async def converse(self, conn: Conversation) -> None:
        while await conn.read():
            pass
