"""The server's guards as plain functions: loopback hosts, tokens, the request budget."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.serve.context import is_loopback
from teiten.serve.security import Budget, authorized

TOKEN = "s3cret-token-of-length"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.1", False),
     ("example.org", False), ("localhost.example.org", False), ("", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "ok"),
    [(f"Bearer {TOKEN}", True), (f"bearer  {TOKEN} ", True), ("Bearer wrong", False),
     (_basic("anyone", TOKEN), True), (_basic(TOKEN, "x"), False), ("Basic ???", False),
     ("Basic " + base64.b64encode(b"\xff\xfe").decode(), False), (TOKEN, False), ("", False)],
)  # fmt: skip
def test_authorized(header: str, ok: bool) -> None:
    assert authorized(header, TOKEN) is ok


@given(st.text(max_size=200))
def test_authorized_never_fails_on_any_header(header: str) -> None:
    assert authorized(header, TOKEN) in (True, False)


def test_budget_refills_at_its_rate() -> None:
    now = [0.0]
    budget = Budget(rate=2.0, burst=2, clock=lambda: now[0])
    assert [budget.take("a") for _ in range(2)] == [0.0, 0.0]
    assert budget.take("a") == pytest.approx(0.5)
    assert budget.take("b") == 0.0  # another client has its own budget
    now[0] = 0.5
    assert budget.take("a") == 0.0
    assert budget.take("a") > 0


def test_budget_remembers_a_bounded_number_of_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    import teiten.serve.security as security

    monkeypatch.setattr(security, "MAX_CLIENTS", 3)
    budget = Budget(rate=1.0, burst=1, clock=lambda: 0.0)
    for client in "abcd":
        budget.take(client)
    assert len(budget._buckets) == 3
    assert budget.take("a") == 0.0  # forgotten, so a fresh budget
