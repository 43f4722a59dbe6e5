"""Masking of published text: sensor addresses always, attacker download hosts by default.

Sensor addresses are secret: anything published (report, export, shared chart)
must not reveal them. :class:`Redactor` knows the sensor's networks and every
address seen as a destination, and replaces each occurrence — dotted, inside
URLs and Host headers, as a 32-bit integer or in hex — by ``[redacted]``.
Download hosts named in payloads are masked too unless the operator asks
otherwise (the seed report masks them).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

MASK = "[redacted]"
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d])")
_URL_HOST = re.compile(r"(?i)\b((?:https?|ftp|tftp)://)([^/\s:'\"<>`;|&)]+)")


class Redactor:
    """Replaces sensor addresses (and optionally given hosts) in text."""

    def __init__(
        self,
        sensor_networks: Iterable[str],
        sensor_addresses: Iterable[str] = (),
        hosts: Iterable[str] = (),
    ) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in sensor_networks]
        self.addresses = {a for a in sensor_addresses if a}
        self.hosts = sorted({h for h in hosts if h}, key=len, reverse=True)
        forms = set()
        for a in self.addresses:
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                continue
            if ip.version == 4:
                forms |= {str(int(ip)), f"0x{int(ip):08x}", f"0x{int(ip):08X}"}
        self._forms = sorted(forms, key=len, reverse=True)

    def is_sensor(self, text: str) -> bool:
        if text in self.addresses:
            return True
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def _ipv4(self, m: re.Match[str]) -> str:
        return MASK if self.is_sensor(m.group(1)) else m.group(0)

    def __call__(self, text: str) -> str:
        text = _IPV4.sub(self._ipv4, text)
        for a in self.addresses:
            if ":" in a:
                text = text.replace(a, MASK)
        for form in self._forms:
            text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(form)}(?![0-9A-Za-z])", MASK, text)
        for host in self.hosts:
            text = text.replace(host, MASK)
        return text

    def leaks(self, text: str) -> list[str]:
        """Sensor addresses still present in ``text`` (for tests and a final check)."""
        found = [m.group(1) for m in _IPV4.finditer(text) if self.is_sensor(m.group(1))]
        found += [a for a in self.addresses if ":" in a and a in text]
        found += [f for f in self._forms if re.search(rf"(?<![0-9A-Za-z]){f}(?![0-9A-Za-z])", text)]
        return found


def download_hosts(text: str) -> set[str]:
    """Hosts named in URLs in a payload (the attacker's download servers)."""
    return {m.group(2) for m in _URL_HOST.finditer(text)}
