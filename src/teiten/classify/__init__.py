"""Classify what clients send to a sensor's listeners: HTTP exploits, SOAP calls, Telnet logins.

The library behind issue 3's payload classification::

    from teiten.classify import classify
    c = classify(request_bytes, dst_port=52869)
    c.app, c.kind, c.signatures, c.cves      # 'http', 'exploit', (...), ('CVE-2014-8361',)
    [i.defanged for i in c.indicators]       # ['hxxp://198.51.100[.]23/okiru.sh', ...]
    c.to_dict()                              # plain JSON-ready data

Parsers (:mod:`~teiten.classify.http`, :mod:`~teiten.classify.soap`,
:mod:`~teiten.classify.telnet`) are bounded and never raise on garbage;
signatures are TOML data (:mod:`~teiten.classify.signatures`, format in
``docs/signatures.md``); indicators are extracted and defanged by
:mod:`~teiten.classify.indicators`. Nothing found in a payload is ever
resolved, fetched or run.
"""

from __future__ import annotations

from teiten.classify.classifier import (
    Check,
    Classification,
    Report,
    Request,
    Verdict,
    classify,
    classify_shell,
    detect_app,
    explain,
    explain_file,
)
from teiten.classify.http import HttpParse, HttpRequest, parse_http
from teiten.classify.indicators import Indicator, defang, defang_text, extract_indicators
from teiten.classify.mirai_credentials import MIRAI_AUTH_TABLE, is_mirai_pair
from teiten.classify.signatures import Fields, Signature, SignatureSet, load_signatures
from teiten.classify.soap import SoapMessage, parse_soap
from teiten.classify.telnet import Login, TelnetSession, logins, parse_telnet

__all__ = [
    "MIRAI_AUTH_TABLE",
    "Check",
    "Classification",
    "Fields",
    "HttpParse",
    "HttpRequest",
    "Indicator",
    "Login",
    "Report",
    "Request",
    "Signature",
    "SignatureSet",
    "SoapMessage",
    "TelnetSession",
    "Verdict",
    "classify",
    "classify_shell",
    "defang",
    "defang_text",
    "detect_app",
    "explain",
    "explain_file",
    "extract_indicators",
    "is_mirai_pair",
    "load_signatures",
    "logins",
    "parse_http",
    "parse_soap",
    "parse_telnet",
]
