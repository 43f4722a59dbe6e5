"""The port page's lists from the day tables (``port_groups``, ``port_tops``, ``port_sketches``).

The seed scenario at a small scale is ingested in Asia/Tokyo. With
``exact_rollup_rows = 1`` the port page's fingerprint mix, countries, ASNs and
busiest sources come from the day tables; by default (the store is small) they
are counted exactly. The two must agree: packets exactly, sources within the
sketch's error, each listed source's packets a lower bound at most ``floor``
below the exact count. Windows the day tables cannot answer count exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from teiten.app.ingest import ingest
from teiten.app.portview import PortQuery, port_view
from teiten.config import Settings, load_settings
from teiten.simulate import SimulationResult
from teiten.sql import portview
from teiten.store.registers import STANDARD_ERROR

PORTS = ("23/tcp", "2323/tcp", "52869/tcp")
EXACT = ("port_fingerprints", "port_sources", "port_countries", "port_asns")
LISTS = ("port_group_rows", "port_top_rows")


def settings(store: Path, **env: str) -> Settings:
    base = {"data": str(store), "tz": "Asia/Tokyo", "home_country": "JP"}
    return load_settings(env=env, overrides=base)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Path:
    """The seed scenario ingested with Asia/Tokyo days (never written by the tests)."""
    path = tmp_path_factory.mktemp("portlists") / "store"
    s = settings(path).replace(sensor_networks=["203.0.113.0/24"])
    ingest(list(npa_small.pcaps), s)
    return path


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the port page statements built, in order."""
    seen: list[str] = []

    def spy(name: str) -> Callable[..., str]:
        build = getattr(portview, name)

        def built(*args: Any, **kwargs: Any) -> str:
            seen.append(name)
            return str(build(*args, **kwargs))

        return built

    for name in (*EXACT, *LISTS):
        monkeypatch.setattr(portview, name, spy(name))
    return seen


def close(exact: int, estimated: int) -> bool:
    """Within three standard errors, or 2 sources where counts are small."""
    return abs(estimated - exact) <= max(2, 3 * STANDARD_ERROR * exact)


def views(store: Path, port: str, query: PortQuery) -> tuple[dict[str, Any], dict[str, Any]]:
    exact = port_view(settings(store), port, query)
    estimated = port_view(settings(store, TEITEN_EXACT_ROLLUP_ROWS="1"), port, query)
    return exact, estimated


@pytest.mark.parametrize("port", PORTS)
def test_lists_from_the_day_tables_agree_with_the_exact_counts(
    store: Path, port: str, built: list[str]
) -> None:
    query = PortQuery(top=10_000)  # every country, ASN and listed source
    exact, estimated = views(store, port, query)
    assert exact["estimate"] is None
    assert [n for n in built if n in EXACT] == list(EXACT)  # once each, for the exact view
    assert not any(n in EXACT for n in built[len(EXACT) :])  # none for the estimated one
    assert set(LISTS) <= set(built)
    est = estimated["estimate"]
    assert est["sources_error"] == pytest.approx(STANDARD_ERROR, abs=1e-4)
    # the fingerprint mix: every name in order, packets exact, sources close
    assert [f["name"] for f in estimated["fingerprints"]] == [
        f["name"] for f in exact["fingerprints"]
    ]
    assert exact["fingerprints"][0]["packets"] > 0
    for e, s in zip(exact["fingerprints"], estimated["fingerprints"], strict=True):
        assert s["packets"] == e["packets"], e["name"]
        assert close(e["sources"], s["sources"]), (e, s)
    # countries and ASNs: the same keys, packets exact, sources close
    for name, key in (("countries", "src_cc"), ("asns", "src_asn")):
        e_rows = {r[key]: r for r in exact[name]}
        s_rows = {r[key]: r for r in estimated[name]}
        assert set(s_rows) == set(e_rows), name
        for k, r in e_rows.items():
            assert s_rows[k]["packets"] == r["packets"], (name, k)
            assert close(r["sources"], s_rows[k]["sources"]), (name, k)
    assert est["other_asns"] is None  # fewer ASNs a day than are kept
    # the busiest sources: each listed count a lower bound, at most `floor` below
    true = {r["src"]: r["packets"] for r in exact["sources"]}
    listed = {r["src"]: r["packets"] for r in estimated["sources"]}
    assert listed and set(listed) <= set(true)
    for src, packets in true.items():
        assert listed.get(src, 0) <= packets <= listed.get(src, 0) + est["floor"], src
    shown = [r["packets"] for r in estimated["sources"]]
    assert shown == sorted(shown, reverse=True)
    if est["floor"] == 0:
        assert estimated["sources"] == exact["sources"]


def test_the_busiest_sources_lead_both_lists(store: Path) -> None:
    """On the busiest port the day lists find the same leaders as the exact count."""
    exact, estimated = views(store, "23/tcp", PortQuery(top=3))
    assert estimated["estimate"]["floor"] > 0  # days with more than 20 sources
    assert [r["src"] for r in estimated["sources"][:2]] == [r["src"] for r in exact["sources"][:2]]


def test_windows_the_day_tables_cannot_answer_count_exactly(store: Path) -> None:
    """Days of another zone than the store's (UTC here) are counted exactly."""
    utc = settings(store, TEITEN_EXACT_ROLLUP_ROWS="1").replace(tz="UTC")
    view = port_view(utc, "52869/tcp", PortQuery(first="2017-11-01", last="2017-11-07"))
    assert view["estimate"] is None
    assert view["fingerprints"][0]["packets"] > 0


def test_a_window_of_days_reads_only_its_days(store: Path) -> None:
    """The lists of a week count the packets of that week, as the exact view does."""
    query = PortQuery(first="2017-11-01", last="2017-11-07", top=10_000)
    exact, estimated = views(store, "52869/tcp", query)
    assert estimated["estimate"] is not None
    assert estimated["fingerprints"][0]["packets"] == exact["fingerprints"][0]["packets"] > 0
    whole, _ = views(store, "52869/tcp", PortQuery())
    assert estimated["fingerprints"][0]["packets"] < whole["fingerprints"][0]["packets"]
