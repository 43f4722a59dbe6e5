"""``huawei-hg532``: the Huawei HG532 router's TR-064 service on 37215 that the
CVE-2017-17215 exploit targets.

``/ctrlt/DeviceUpgrade_1`` without an ``Authorization`` header gets the Digest
401 challenge; with one (exploits send the ``dslf-config`` credentials
straight away) the SOAP ``Upgrade`` call is accepted. The body is recorded and
never interpreted. Other paths get 404.
"""

from __future__ import annotations

import secrets

from teiten.sensor.http import read_request, response
from teiten.sensor.responder import Conversation

SERVER = "HuaweiHomeGateway"
PATH = "/ctrlt/DeviceUpgrade_1"
ANSWER = (
    b'<?xml version="1.0" ?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    b's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
    b'<u:UpgradeResponse xmlns:u="urn:schemas-upnp-org:service:WANPPPConnection:1">'
    b"<NewUpgradeStatus>1</NewUpgradeStatus></u:UpgradeResponse></s:Body></s:Envelope>\r\n"
)


class HuaweiHg532:
    """Digest challenge, then acceptance, on the one path the exploit uses."""

    kind = "huawei-hg532"

    async def converse(self, conn: Conversation) -> None:
        req = await read_request(conn)
        if req is None:
            return
        if req.path.split("?")[0] != PATH:
            await conn.write(response(404, "Not Found", b"", server=SERVER))
        elif not req.headers.get("authorization", "").lower().startswith("digest"):
            nonce = secrets.token_hex(16)
            challenge = f'Digest realm="HuaweiHomeGateway", nonce="{nonce}", qop="auth"'
            await conn.write(response(401, "Unauthorized", b"", server=SERVER,
                                      extra=(("WWW-Authenticate", challenge),)))  # fmt: skip
        else:
            await conn.write(response(200, "OK", ANSWER, server=SERVER, ctype="text/xml"))
