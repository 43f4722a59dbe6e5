"""Mirai's default Telnet credential table, as the bot actually sends it.

Source: jgamblin/Mirai-Source-Code ``mirai/bot/scanner.c``, the 62
``add_auth_entry(username, password, weight)`` calls in ``scanner_init``
(commit 6a5941be). The strings there are obfuscated: each byte is XOR-ed with
the four bytes of the table key ``0xdeadbeef`` (``mirai/bot/table.c``), i.e.
with ``0xde ^ 0xad ^ 0xbe ^ 0xef == 0x22``. The pairs below were decoded from
those bytes, not from the comments beside them, and the two disagree twice:

* the ``Administrator`` entry decodes to password ``meinsm`` (comment: ``admin``);
* one ``admin`` entry decodes to ``4321`` (comment: ``1234``).

``guest``/``12345`` is listed twice in the source; it appears once here. The
weight is the relative chance the bot picks the pair (``random_auth_entry``).
"""

from __future__ import annotations

MIRAI_AUTH_TABLE: tuple[tuple[str, str, int], ...] = (
    ("root", "xc3511", 10), ("root", "vizxv", 9), ("root", "admin", 8), ("admin", "admin", 7),
    ("root", "888888", 6), ("root", "xmhdipc", 5), ("root", "default", 5),
    ("root", "juantech", 5), ("root", "123456", 5), ("root", "54321", 5),
    ("support", "support", 5), ("root", "", 4), ("admin", "password", 4), ("root", "root", 4),
    ("root", "12345", 4), ("user", "user", 3), ("admin", "", 3), ("root", "pass", 3),
    ("admin", "admin1234", 3), ("root", "1111", 3), ("admin", "smcadmin", 3),
    ("admin", "1111", 2), ("root", "666666", 2), ("root", "password", 2), ("root", "1234", 2),
    ("root", "klv123", 1), ("Administrator", "meinsm", 1), ("service", "service", 1),
    ("supervisor", "supervisor", 1), ("guest", "guest", 1), ("guest", "12345", 1),
    ("admin1", "password", 1), ("administrator", "1234", 1), ("666666", "666666", 1),
    ("888888", "888888", 1), ("ubnt", "ubnt", 1), ("root", "klv1234", 1), ("root", "Zte521", 1),
    ("root", "hi3518", 1), ("root", "jvbzd", 1), ("root", "anko", 4), ("root", "zlxx.", 1),
    ("root", "7ujMko0vizxv", 1), ("root", "7ujMko0admin", 1), ("root", "system", 1),
    ("root", "ikwb", 1), ("root", "dreambox", 1), ("root", "user", 1), ("root", "realtek", 1),
    ("root", "00000000", 1), ("admin", "1111111", 1), ("admin", "1234", 1),
    ("admin", "12345", 1), ("admin", "54321", 1), ("admin", "123456", 1),
    ("admin", "7ujMko0admin", 1), ("admin", "4321", 1), ("admin", "pass", 1),
    ("admin", "meinsm", 1), ("tech", "tech", 1), ("mother", "fucker", 1),
)  # fmt: skip
"""(username, password, weight) in source order; an empty string is an empty password."""

MIRAI_PAIRS: frozenset[tuple[str, str]] = frozenset((u, p) for u, p, _ in MIRAI_AUTH_TABLE)


def is_mirai_pair(username: str, password: str) -> bool:
    """Whether Mirai's scanner tries this exact pair (case-sensitive).

    >>> is_mirai_pair("root", "xc3511"), is_mirai_pair("root", "toor")
    (True, False)
    """
    return (username, password) in MIRAI_PAIRS
