"""``upnp-realtek``: a miniupnpd-like Realtek router on 52869/52881 that lets the
CVE-2014-8361 exploit deliver its command.

GETs of the description documents (``/picsdesc.xml``, ``/picdesc.xml``,
``/rootDesc.xml``, ``/wanipcn.xml``, ``/wanipcn.xml?service=WANIPConn1`` and
the other paths exploits fetch) get a root or service description with
Realtek strings; a SOAP POST to any path gets the ``…Response`` of the action
it names (``AddPortMapping`` first of all), which is what the exploit waits
for. The body is recorded, never interpreted beyond its action name.
"""

from __future__ import annotations

import re

from teiten.sensor.http import read_request, response
from teiten.sensor.responder import Conversation

SERVER = "miniupnpd/1.0 UPnP/1.0"
_ACTION = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_]{0,63})")
_SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:1"

ROOT = f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>Realtek Wireless Router</friendlyName>
<manufacturer>Realtek Semiconductor Corp.</manufacturer>
<manufacturerURL>http://www.realtek.com.tw</manufacturerURL>
<modelDescription>Realtek AP with miniigd</modelDescription>
<modelName>RTL8196C</modelName>
<modelNumber>1</modelNumber>
<serialNumber>00000001</serialNumber>
<UDN>uuid:12342409-1234-1234-5678-ee1234cc5678</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<friendlyName>WANConnectionDevice</friendlyName>
<serviceList><service>
<serviceType>{_SERVICE}</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/wanipcn.xml</controlURL>
<eventSubURL>/wanipcn.xml</eventSubURL>
<SCPDURL>/wanipcn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
<presentationURL>http://192.168.1.1/</presentationURL>
</device>
</root>
""".encode()

SCPD = b"""<?xml version="1.0"?>
<scpd xmlns="urn:schemas-upnp-org:service-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<actionList>
<action><name>AddPortMapping</name></action>
<action><name>DeletePortMapping</name></action>
<action><name>GetExternalIPAddress</name></action>
<action><name>GetStatusInfo</name></action>
</actionList>
</scpd>
"""

_SCPD_PATHS = ("/wanipcn.xml", "/wanipcn.xml?service=WANIPConn1", "/WANIPCn.xml", "/wancfg.xml",
               "/wancommonifc.xml", "/WANIPConnection.xml")  # fmt: skip


def soap_answer(action: str) -> bytes:
    """The empty success response to a SOAP ``action`` (any name; it is only echoed)."""
    return (
        '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
        ' s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action}Response xmlns:u="{_SERVICE}"></u:{action}Response>'
        "</s:Body></s:Envelope>\r\n"
    ).encode()


class UpnpRealtek:
    """The description documents on GET, a success answer to every SOAP POST."""

    kind = "upnp-realtek"

    async def converse(self, conn: Conversation) -> None:
        req = await read_request(conn)
        if req is None:
            return
        if req.method == "POST":
            m = _ACTION.search(req.headers.get("soapaction", ""))
            action = m[1] if m else "AddPortMapping"
            xml = 'text/xml; charset="utf-8"'
            await conn.write(response(200, "OK", soap_answer(action), server=SERVER, ctype=xml,
                                      extra=(("EXT", ""),)))  # fmt: skip
        elif req.method in ("GET", "HEAD"):
            body = SCPD if req.path in _SCPD_PATHS else ROOT
            reply = response(200, "OK", body, server=SERVER, ctype="text/xml")
            await conn.write(reply if req.method == "GET" else reply[: -len(body)])
        else:
            body = b"<HTML><HEAD><TITLE>501 Not Implemented</TITLE></HEAD></HTML>\r\n"
            await conn.write(response(501, "Not Implemented", body, server=SERVER))
