"""Alert state: the matching policy (pure) and the store that persists its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from teiten.analysis.alerts import (
    ONSET_MATCH_DAYS,
    Alert,
    alert_from_row,
    alert_to_row,
    merge_alerts,
    read_stored_alerts,
)
from teiten.schema import ALERTS, DELIVERIES
from teiten.store.alerts import AlertStore, read_alert_rows


def _alert(onset: str = "2017-11-01", *, ongoing: bool = True, **kw: object) -> Alert:
    values: dict[str, object] = {
        "kind": "surge",
        "port": "23/tcp",
        "segment": "domestic",
        "onset": onset,
        "detected": onset,
        "last": "2017-11-20",
        "ratio": 4.0,
        "score": 9.5,
        "baseline": 10.0,
        "peak": 80.0,
        "ongoing": ongoing,
        "evidence": {"tz": "UTC"},
    }
    values.update(kw)
    return Alert(**values)  # type: ignore[arg-type]


def test_a_rise_within_the_match_days_continues_the_stored_alert() -> None:
    known = [_alert("2017-11-01", id=7, state="new")]
    later = f"2017-11-{1 + ONSET_MATCH_DAYS:02d}"
    merge = merge_alerts(known, [_alert(later)])
    assert [(a.id, a.state) for a in merge.alerts] == [(7, "ongoing")]
    assert merge.ended == ()
    stopped = merge_alerts(known, [_alert(later, ongoing=False)])
    assert [(a.id, a.state) for a in stopped.alerts] == [(7, "ended")]


def test_a_rise_beyond_the_match_days_is_new_and_the_old_one_ends() -> None:
    known = [_alert("2017-11-01", id=7, state="ongoing")]
    beyond = f"2017-11-{2 + ONSET_MATCH_DAYS:02d}"
    merge = merge_alerts(known, [_alert(beyond)])
    assert [(a.id, a.state) for a in merge.alerts] == [(None, "new")]
    assert merge.ended == (7,)


def test_other_port_kind_or_segment_is_another_rise() -> None:
    known = [_alert(id=1, state="new")]
    found = [_alert(port="2323/tcp"), _alert(kind="sweep"), _alert(segment="all")]
    merge = merge_alerts(known, found)
    assert [a.id for a in merge.alerts] == [None, None, None]
    assert {a.state for a in merge.alerts} == {"new"} and merge.ended == (1,)


def test_unseen_alerts_end_once_and_the_policy_changes_nothing() -> None:
    known = [_alert(id=1, state="ongoing"), _alert("2017-10-01", id=2, state="ended")]
    found = [_alert("2017-12-15")]
    merge = merge_alerts(known, found)
    assert merge.ended == (1,)  # 2 had ended already
    assert found[0].id is None and found[0].state == "new"  # inputs untouched
    assert known[0].state == "ongoing"


def test_one_stored_alert_is_continued_by_one_found_alert_only() -> None:
    known = [_alert(id=3, state="new")]
    merge = merge_alerts(known, [_alert(), _alert("2017-11-02")])
    assert [a.id for a in merge.alerts] == [3, None]


def test_rows_round_trip_through_the_store_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    store = AlertStore(path)
    try:
        first = merge_alerts([], [_alert(), _alert(port="2323/tcp")])
        ids = store.save([alert_to_row(a) for a in first.alerts], first.ended, "t1")
        assert len(set(ids)) == 2
        known = [alert_from_row(r) for r in store.rows()]
        assert {a.state for a in known} == {"new"}
        again = merge_alerts(known, [_alert("2017-11-02")])
        assert store.save([alert_to_row(a) for a in again.alerts], again.ended, "t2") == [ids[0]]
    finally:
        store.close()
    rows = read_alert_rows(path)
    assert {r["id"]: (r["state"], r["updated"]) for r in rows} == {
        ids[0]: ("ongoing", "t2"),
        ids[1]: ("ended", "t2"),
    }
    alerts = read_stored_alerts(path)
    assert {a.onset for a in alerts} == {"2017-11-01", "2017-11-02"}
    assert alerts[0].evidence == {"tz": "UTC"}


def test_a_failed_save_changes_nothing(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "catalog.sqlite")
    try:
        merge = merge_alerts([], [_alert()])
        store.save([alert_to_row(a) for a in merge.alerts], (), "t1")
        bad = alert_to_row(_alert(port="2323/tcp", state="bogus"))  # refused by the CHECK
        try:
            store.save([alert_to_row(_alert(port="80/tcp")), bad], (1,), "t2")
        except sqlite3.IntegrityError:
            pass
        else:  # pragma: no cover - the CHECK must refuse it
            raise AssertionError("state 'bogus' was stored")
        assert [(r["port"], r["state"]) for r in store.rows()] == [("23/tcp", "new")]
    finally:
        store.close()


def test_tables_are_created_from_the_declarations(tmp_path: Path) -> None:
    AlertStore(tmp_path / "catalog.sqlite").close()
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    try:
        for table in (ALERTS, DELIVERIES):
            info = db.execute(f"PRAGMA table_info({table.name})").fetchall()
            assert [r[1] for r in info] == [c.name for c in table.columns]
            assert [r[1] for r in info if r[5]] == [table.key]
    finally:
        db.close()
    assert read_alert_rows(tmp_path / "missing.sqlite") == []
