"""Recover the lines, logins and shell commands a Telnet client sent.

The client stream has its IAC option negotiation (including subnegotiation)
removed and is cut into lines at CR LF, CR NUL, CR, LF or NUL. When the
server's side is given, its prompts (``login:``, ``Password:``, failure
messages, a shell prompt ending in ``#``, ``$``, ``>`` or ``%``) say which
client line answered what and whether the login worked. Without it the lines
are read in the order Mirai's scanner sends them (jgamblin/Mirai-Source-Code
``mirai/bot/scanner.c``: one username, one password, then ``enable``,
``system``, ``shell``, ``sh`` and the ``/bin/busybox`` query), so success is
unknown. Input is capped at :data:`MAX_INPUT` bytes and :data:`MAX_LINES`
lines; nothing raises.

>>> s = parse_telnet(b"\\xff\\xfb\\x1fadmin\\r\\nadmin\\r\\nsh\\r\\n")
>>> [(x.username, x.password, x.success, x.commands, x.mirai_dict) for x in logins(s)]
[('admin', 'admin', None, ('sh',), True)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from teiten.classify.mirai_credentials import is_mirai_pair

MAX_INPUT = 64 * 1024
MAX_LINES = 1000
MAX_LINE = 4096
MAX_OPTIONS = 64

IAC, SB, SE = 255, 250, 240
_VERBS = {251: "WILL", 252: "WONT", 253: "DO", 254: "DONT"}
_OPTIONS = {0: "BINARY", 1: "ECHO", 3: "SGA", 5: "STATUS", 24: "TTYPE", 31: "NAWS", 32: "TSPEED",
            33: "LFLOW", 34: "LINEMODE", 36: "ENVIRON", 39: "NEW-ENVIRON"}  # fmt: skip
_EOL = re.compile(rb"\r\n|\r\x00|\r|\n|\x00")
_EVENTS = re.compile(
    r"(?P<fail>incorrect|failed|denied|invalid|wrong)"
    r"|(?P<password>pass(?:word|code)?\s*:)"
    r"|(?P<login>(?<!last )(?:login|username|user name|user)\s*:)"
    r"|(?P<shell>[#$>%][ \t]*(?=[\r\n]|\Z))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Login:
    """One login attempt: what was typed, whether it worked (None: unknown), what followed."""

    username: str
    password: str | None
    success: bool | None
    commands: tuple[str, ...]
    mirai_dict: bool
    """The pair is in Mirai's default credential table."""


@dataclass(frozen=True)
class TelnetSession:
    """A client's Telnet stream without negotiation, and the server's prompts if known."""

    lines: tuple[str, ...]
    options: tuple[str, ...]
    """The client's negotiation, e.g. ``WILL NAWS``, ``SB NAWS 00500018``."""
    events: tuple[str, ...] | None
    """The server's prompts in order (``login``, ``password``, ``fail``, ``shell``), or None."""
    notes: tuple[str, ...] = ()
    raw_lines: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    """The bytes of :attr:`lines` (which are these decoded with ``backslashreplace``), so
    commands can be read for indicators without spelling each non-UTF-8 byte first."""


def strip_iac(data: bytes) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    """The data bytes of a Telnet stream, the negotiation it held, and notes on broken IAC."""
    out: list[bytes] = []
    options: list[str] = []
    notes: list[str] = []
    pos = 0
    while pos < len(data):
        at = data.find(b"\xff", pos)
        if at < 0:
            out.append(data[pos:])
            break
        out.append(data[pos:at])
        cmd = data[at + 1] if at + 1 < len(data) else -1
        if cmd == IAC:
            out.append(b"\xff")
            pos = at + 2
        elif cmd in _VERBS and at + 2 < len(data):
            _option(options, f"{_VERBS[cmd]} {_name(data[at + 2])}")
            pos = at + 3
        elif cmd == SB:
            end = data.find(b"\xff\xf0", at + 2)
            stop = len(data) if end < 0 else end
            if end < 0:
                notes.append("subnegotiation not ended by IAC SE")
            if at + 2 < stop:
                _option(options, f"SB {_name(data[at + 2])} {data[at + 3 : stop][:32].hex()}")
            pos = stop + 2
        elif cmd < 0 or cmd in _VERBS:
            notes.append("stream ends inside an IAC command")
            break
        else:
            pos = at + 2
    return b"".join(out), tuple(options), tuple(notes)


def _name(option: int) -> str:
    return _OPTIONS.get(option, str(option))


def _option(options: list[str], text: str) -> None:
    if len(options) < MAX_OPTIONS:
        options.append(text)


def parse_telnet(client: bytes, server: bytes | None = None) -> TelnetSession:
    """The client's lines and negotiation, with the server's prompt sequence when given."""
    notes: list[str] = []
    if len(client) > MAX_INPUT:
        notes.append(f"input cut at {MAX_INPUT} of {len(client)} bytes")
        client = client[:MAX_INPUT]
    data, options, iac_notes = strip_iac(client)
    notes.extend(iac_notes)
    parts = _EOL.split(data, maxsplit=MAX_LINES)
    tail = parts.pop()
    if tail and len(parts) == MAX_LINES:
        notes.append(f"lines beyond {MAX_LINES} dropped")
    elif tail:
        notes.append("last line not terminated")
        parts.append(tail)
    raw = tuple(p[:MAX_LINE] for p in parts)
    lines = tuple(p.decode("utf-8", "backslashreplace") for p in raw)
    events = None if server is None else server_events(server)
    return TelnetSession(lines, options, events, tuple(notes), raw)


def server_events(server: bytes) -> tuple[str, ...]:
    """The server's prompts and answers that matter for logins, in order."""
    text = strip_iac(server[:MAX_INPUT])[0].decode("latin-1")
    return tuple(str(m.lastgroup) for m in _EVENTS.finditer(text))


def logins(session: TelnetSession) -> tuple[Login, ...]:
    """The login attempts in a session (see the module notes for how lines are assigned)."""
    if session.events is None:
        return _mirai_order(session.lines)
    return _by_prompts(session.lines, session.events)


def commands_of(found: tuple[Login, ...]) -> tuple[str, ...]:
    """The commands of a session's logins: those of a successful one, else of the last one."""
    done = [x for x in found if x.success] or found[-1:]
    return done[0].commands if done else ()


def _login(user: str, password: str | None, success: bool | None, cmds: tuple[str, ...]) -> Login:
    mirai = password is not None and is_mirai_pair(user, password)
    return Login(user, password, success, cmds, mirai)


def _mirai_order(lines: tuple[str, ...]) -> tuple[Login, ...]:
    if not lines:
        return ()
    password = lines[1] if len(lines) > 1 else None
    return (_login(lines[0], password, None, lines[2:]),)


def _by_prompts(lines: tuple[str, ...], events: tuple[str, ...]) -> tuple[Login, ...]:
    """Each prompt is answered by the next unread client line; a shell prompt ends the login."""
    out: list[Login] = []
    user: str | None = None
    password: str | None = None
    i = 0
    for event in events:
        if event == "login":
            if user is not None:  # asked again without a failure message: that try failed
                out.append(_login(user, password, False, ()))
            user, password = (lines[i], None) if i < len(lines) else (None, None)
            i += user is not None
        elif event == "password" and i < len(lines):
            password, i = lines[i], i + 1
            user = "" if user is None else user
        elif event == "fail" and password is not None and user is not None:
            out.append(_login(user, password, False, ()))
            user = password = None
        elif event == "shell" and password is not None and user is not None:
            out.append(_login(user, password, True, lines[i:]))
            return tuple(out)
    if user is not None:
        out.append(_login(user, password, None, lines[i:] if password is not None else ()))
    return tuple(out)
