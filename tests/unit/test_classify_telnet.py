"""Telnet streams: IAC stripped, lines split, logins and commands recovered, Mirai's table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from teiten.classify.mirai_credentials import MIRAI_AUTH_TABLE, MIRAI_PAIRS, is_mirai_pair
from teiten.classify.telnet import (
    MAX_LINES,
    commands_of,
    logins,
    parse_telnet,
    server_events,
    strip_iac,
)
from teiten.simulate.payloads import MIRAI_CREDENTIALS

CLIENT_OPTS = bytes.fromhex("fffc01fffb1ffffa1f00500018fff0fffd01fffd03")  # as Mirai answers


def test_iac_negotiation_and_subnegotiation_are_stripped() -> None:
    data, options, notes = strip_iac(CLIENT_OPTS + b"ro\xff\xffot\r\n")
    assert data == b"ro\xffot\r\n" and notes == ()
    assert options == ("WONT ECHO", "WILL NAWS", "SB NAWS 00500018", "DO ECHO", "DO SGA")
    unended = strip_iac(b"a\xff\xf1b\xff\xfa\x18")
    assert (unended[0], unended[2]) == (b"ab", ("subnegotiation not ended by IAC SE",))
    assert strip_iac(b"a\xff\xfb")[2] == ("stream ends inside an IAC command",)


def test_lines_split_on_cr_lf_nul() -> None:
    s = parse_telnet(b"a\r\nb\r\x00c\rd\ne\x00f\r\n\r\n")
    assert s.lines == ("a", "b", "c", "d", "e", "f", "")
    assert parse_telnet(b"user\r\npass").notes == ("last line not terminated",)


def test_mirai_order_without_server() -> None:
    s = parse_telnet(CLIENT_OPTS + b"root\r\n\r\nenable\r\nsh\r\n/bin/busybox MIRAI\r\n")
    (login,) = logins(s)
    assert (login.username, login.password, login.success, login.mirai_dict) == (
        "root",
        "",
        None,
        True,
    )  # root with an empty password is in the table
    assert login.commands == ("enable", "sh", "/bin/busybox MIRAI")
    assert logins(parse_telnet(b"root\r\n"))[0].password is None


def test_prompts_decide_with_server_bytes() -> None:
    client = b"root\r\ntoor\r\nadmin\r\nadmin\r\nenable\r\n/bin/busybox ECCHI\r\n"
    server = (
        b"\xff\xfd\x01\r\nlogin: Password: \r\nLogin incorrect\r\nlogin: Password: "
        b"\r\nBusyBox v1.12.1 built-in shell (ash)\r\n# \r\n# ECCHI: applet not found\r\n# "
    )
    s = parse_telnet(client, server)
    assert s.events is not None
    assert s.events[:5] == ("login", "password", "fail", "login", "password")
    first, second = logins(s)
    assert (first.username, first.password, first.success, first.mirai_dict) == (
        "root", "toor", False, False)  # fmt: skip
    assert (second.username, second.password, second.success, second.mirai_dict) == (
        "admin", "admin", True, True)  # fmt: skip
    assert commands_of((first, second)) == ("enable", "/bin/busybox ECCHI")


def test_reprompt_without_message_is_a_failure_and_last_login_is_not_a_prompt() -> None:
    s = parse_telnet(b"a\r\nb\r\nc\r\nd\r\n", b"login: Password: login: Password: \r\n$ ")
    assert [(x.username, x.success) for x in logins(s)] == [("a", False), ("c", True)]
    assert server_events(b"Last login: Mon\r\n$ ") == ("shell",)


def test_mirai_table_is_decoded_from_the_source() -> None:
    assert len(MIRAI_AUTH_TABLE) == 61 and len(MIRAI_PAIRS) == 61
    assert MIRAI_AUTH_TABLE[0] == ("root", "xc3511", 10)
    assert is_mirai_pair("Administrator", "meinsm") and is_mirai_pair("admin", "4321")
    assert not is_mirai_pair("Root", "xc3511")
    # The simulator uses a subset of the decoded table (the vulgar pair left out).
    sim_only, source_only = MIRAI_CREDENTIALS - MIRAI_PAIRS, MIRAI_PAIRS - MIRAI_CREDENTIALS
    assert sim_only == set()
    assert source_only <= {("admin", "4321"), ("mother", "fucker")}


@given(st.binary(max_size=2048), st.none() | st.binary(max_size=512))
def test_garbage_never_raises(client: bytes, server: bytes | None) -> None:
    s = parse_telnet(client, server)
    assert len(s.lines) <= MAX_LINES
    for x in logins(s):
        assert isinstance(x.username, str)


def test_line_cap() -> None:
    s = parse_telnet(b"x\n" * 5000)
    assert len(s.lines) == MAX_LINES and any("dropped" in n for n in s.notes)
