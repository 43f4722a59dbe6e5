"""The engine pool of long-running readers: engines used again, at most ``size`` at once,
and a new engine (the old ones closed) once the store changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import teiten.app.engine as engine_module
from teiten.app.engine import EnginePool, open_engine, pooled, store_version
from teiten.config import Settings, load_settings


class FakeEngine:
    opened = 0

    def __init__(self) -> None:
        FakeEngine.opened += 1
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    (tmp_path / "catalog.sqlite").write_bytes(b"v1")
    FakeEngine.opened = 0
    monkeypatch.setattr(engine_module, "_connect", lambda settings: FakeEngine())
    return load_settings(env={}, overrides={"data": str(tmp_path)})


def _commit(settings: Settings, text: bytes) -> None:
    before = store_version(settings.data_dir)
    (settings.data_dir / "catalog.sqlite").write_bytes(text)
    assert store_version(settings.data_dir) != before


def test_an_engine_is_used_again(store: Settings) -> None:
    pool = EnginePool(size=2)
    with pool.lease(store) as a:
        pass
    with pool.lease(store) as b:
        pass
    assert a is b and FakeEngine.opened == 1 and not a.closed  # type: ignore[attr-defined]


def test_a_commit_opens_a_new_engine_and_closes_the_old(store: Settings) -> None:
    pool = EnginePool(size=2)
    with pool.lease(store) as old:
        pass
    _commit(store, b"version two")
    with pool.lease(store) as new:
        assert new is not old and old.closed  # type: ignore[attr-defined]
    with pool.lease(store) as again:
        assert again is new


def test_an_engine_in_use_during_a_commit_is_closed_when_returned(store: Settings) -> None:
    pool = EnginePool(size=2)
    with pool.lease(store) as busy:
        _commit(store, b"version two")
        with pool.lease(store) as fresh:
            assert fresh is not busy
        assert not busy.closed  # type: ignore[attr-defined]
    assert busy.closed  # type: ignore[attr-defined]
    with pool.lease(store) as next_one:
        assert next_one is fresh


def test_at_most_size_engines_at_once(store: Settings) -> None:
    pool = EnginePool(size=1)
    order: list[str] = []

    def second() -> None:
        with pool.lease(store):
            order.append("second")

    with pool.lease(store):
        worker = threading.Thread(target=second)
        worker.start()
        time.sleep(0.2)
        order.append("first done")
    worker.join(5)
    assert order == ["first done", "second"] and FakeEngine.opened == 1


def test_open_engine_leases_only_inside_pooled(store: Settings) -> None:
    pool = EnginePool()
    seen: list[Any] = []
    with pooled(pool):
        for _ in range(2):
            with open_engine(store) as e:
                seen.append(e)
    with open_engine(store) as outside:
        pass
    assert seen[0] is seen[1] and outside is not seen[0] and outside.closed
