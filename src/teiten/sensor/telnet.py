"""``telnet``: option negotiation, ``login:``/``Password:`` prompts, then a minimal
BusyBox shell that answers from canned text.

Any username and password are accepted after the first attempt fails (bots
retry), so the commands that follow are recorded too. Nothing the client
types is executed or evaluated: each command's first word picks a canned
answer (``/bin/busybox NAME`` answers ``NAME: applet not found`` as Mirai's
check expects), everything else gets an empty answer. Credentials and
commands are recovered at ingest from the recorded client bytes, the same way
as from a reassembled capture.
"""

from __future__ import annotations

from teiten.sensor.responder import Conversation

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
NEGOTIATION = bytes([IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 24, IAC, DO, 31])
"""WILL ECHO, WILL SGA, DO TTYPE, DO NAWS: what small routers send first."""
BANNER = b"\r\nBusyBox v1.19.4 (2014-05-27 15:20:31 CST) built-in shell (ash)\r\n"
PROMPT = b"# "
MAX_COMMANDS = 64
_CANNED = {
    "enable": b"", "system": b"", "shell": b"", "sh": b"", "cd": b"", "echo": None,
    "uname": b"Linux\r\n", "id": b"uid=0(root) gid=0(root)\r\n", "whoami": b"root\r\n",
    "ps": b"  PID USER       VSZ STAT COMMAND\r\n    1 root      1500 S    init\r\n",
    "cat": b"", "ls": b"bin   dev   etc   lib   proc  sbin  tmp   usr   var\r\n",
    "wget": b"", "tftp": b"", "chmod": b"", "rm": b"", "exit": b"", "logout": b"",
}  # fmt: skip


def take_line(buf: bytearray, limit: int) -> bytes | None:
    """Remove the first line from ``buf`` and give its text without Telnet IAC sequences
    (commands, options, subnegotiation), or None when ``buf`` holds no whole line yet.
    CR, LF and NUL end a line (outside IAC sequences); a line is cut at ``limit`` bytes.

    >>> b = bytearray(b"\\xff\\xfb\\x1fad\\xff\\xfa\\x1f\\x00\\x50\\xff\\xf0min\\r\\nrest")
    >>> take_line(b, 100), bytes(b)
    (b'admin', b'\\nrest')
    """
    out, i, n = bytearray(), 0, len(buf)
    while i < n:
        b = buf[i]
        if b in (10, 13, 0) or len(out) >= limit:
            del buf[: i + (len(out) < limit)]
            return bytes(out)
        if b != IAC:
            out.append(b)
            i += 1
            continue
        if i + 1 >= n:
            return None
        verb = buf[i + 1]
        if verb == IAC:
            out.append(IAC)
            i += 2
        elif verb == SB:
            end = buf.find(bytes([IAC, SE]), i + 2)
            if end < 0:
                return None if n - i < limit else _drop(buf, n)
            i = end + 2
        elif verb in (WILL, WONT, DO, DONT):
            if i + 2 >= n:
                return None
            i += 3
        else:
            i += 2
    return None


def _drop(buf: bytearray, n: int) -> bytes:
    del buf[:n]
    return b""


def answer(command: str) -> bytes:
    """The canned output of one shell command line (nothing is run)."""
    words = command.split()
    if not words:
        return b""
    first = words[0].rsplit("/", 1)[-1]
    if first == "busybox" and len(words) > 1:
        applet = words[1].rsplit("/", 1)[-1]
        if applet in _CANNED:
            first, words = applet, words[1:]
        else:
            name = applet.encode("ascii", "replace")[:64]
            return name + b": applet not found\r\n"
    if first == "echo":
        return (
            " ".join(w for w in words[1:] if not w.startswith("-")).encode("ascii", "replace")[:256]
            + b"\r\n"
        )
    canned = _CANNED.get(first)
    if canned is None:
        return f"-sh: {first[:64]}: not found\r\n".encode("ascii", "replace")
    return canned


class Telnet:
    """Login prompts, one failed attempt, then the canned shell."""

    kind = "telnet"

    def __init__(self) -> None:
        self._buf = bytearray()

    async def _line(self, conn: Conversation) -> str | None:
        """The next non-empty input line without options, or None at the end of input."""
        while True:
            line = take_line(self._buf, conn.limits.max_line)
            if line is None:
                data = await conn.read()
                if not data:
                    line = take_line(self._buf + b"\n", conn.limits.max_line) or b""
                    self._buf.clear()
                    text = line.strip().decode("latin-1")
                    return text or None
                self._buf += data
            elif text := line.strip().decode("latin-1"):
                return text

    async def converse(self, conn: Conversation) -> None:
        await conn.write(NEGOTIATION + b"\r\nlogin: ")
        for attempt in range(2):
            if await self._line(conn) is None:
                return
            await conn.write(b"Password: ")
            if await self._line(conn) is None:
                return
            if attempt == 0:
                await conn.write(b"\r\nLogin incorrect\r\nlogin: ")
        await conn.write(BANNER + PROMPT)
        for _ in range(MAX_COMMANDS):
            line = await self._line(conn)
            if line is None:
                return
            for part in line.split(";"):
                if part.split()[:1] in (["exit"], ["logout"]):
                    return
                await conn.write(answer(part))
            await conn.write(PROMPT)
