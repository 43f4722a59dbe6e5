"""Schemathesis over the API's own OpenAPI document: whatever parameters a client sends,
every operation answers with a documented status and never an internal error (5xx)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teiten.config import Settings
from teiten.serve import ServeOptions, create_app

LOCAL = {"Host": "127.0.0.1"}


@pytest.fixture(scope="module")
def api(seed_store: Settings) -> Any:
    app = create_app(seed_store, ServeOptions(rate=0))
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=LOCAL)


def test_every_operation_is_covered(api: Any) -> None:
    labels = {op.ok().label for op in api.get_all_operations()}
    assert len(labels) >= 11 and "GET /api/v1/trend" in labels


def test_no_server_error(api: Any) -> None:
    operations = [op.ok() for op in api.get_all_operations()]
    strategy = st.one_of([op.as_strategy() for op in operations])

    @given(case=strategy)
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Any) -> None:
        response = case.call(headers=LOCAL)
        assert response.status_code < 500, (case.path, case.query, response.text[:300])
        assert response.headers["content-type"][0].split(";")[0] in (
            "application/json", "text/csv", "application/stix+json",
        )  # fmt: skip

    check()
