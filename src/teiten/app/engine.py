"""The engine a command's settings choose, over the settings' data folder.

A command opens an engine, runs its statements and closes it. A long-running
reader (``teiten serve``) leases from an :class:`EnginePool` instead
(:func:`pooled`): opening an engine reads the footer of every stored
file to build the views, which costs more than most of the dashboard's
statements, so pooled engines are kept open and used again until the store
changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import pyarrow as pa

from teiten.config import Settings
from teiten.engine import Engine, Scope, connect
from teiten.enrich.country import country_code
from teiten.fingerprint import registry
from teiten.store.lake import Lake


def scope(settings: Settings) -> Scope:
    """The fixed terms of the views: home country, fingerprint names, engine options."""
    return Scope(
        home=country_code(str(settings.home_country)),
        fingerprints=tuple((f.bit, f.name) for f in registry.registered()),
        options=(
            ("spark_master", str(settings.spark_master)),
            ("spark_data_url", str(settings.spark_data_url)),
        ),
        exact_rows=int(settings.exact_rollup_rows),
    )


def _connect(settings: Settings) -> Engine:
    with Lake(settings.data_dir) as lake:  # engines read the catalog only while they open
        return connect(str(settings.engine), lake, scope(settings))


def store_version(data: Path) -> tuple[int, ...]:
    """Size and modification time of the catalog and its write-ahead log: they change
    with every commit (ingest, enrich, detect's alert state).

    An empty log counts as none: a reader that opens the catalog after a checkpoint
    creates an empty one, which changes nothing stored.
    """
    out: list[int] = []
    for name in ("catalog.sqlite", "catalog.sqlite-wal"):
        try:
            st = (data / name).stat()
        except OSError:
            out += [-1, -1]
            continue
        out += [st.st_size, st.st_mtime_ns] if st.st_size else [-1, -1]
    return tuple(out)


class EnginePool:
    """Open engines kept between calls, at most ``size`` per store, one caller each at a time.

    An engine is keyed by the data folder, the engine's name, its scope and the
    store's version (:func:`store_version`): after a commit the next call opens a
    new engine over the new files; engines over older versions are closed when
    idle or when returned.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._cond = threading.Condition()
        self._idle: dict[tuple[object, ...], list[Engine]] = {}
        self._open: dict[tuple[object, ...], int] = {}
        self._latest: dict[tuple[object, ...], tuple[object, ...]] = {}

    def _retire(self, key: tuple[object, ...], engine: Engine) -> None:
        engine.close()
        self._open[key] -= 1
        if not self._open[key]:
            del self._open[key]

    def _make_latest(self, key: tuple[object, ...]) -> None:
        """``key`` is its store's version now: close the idle engines of older ones."""
        old = self._latest.get(key[:3])
        self._latest[key[:3]] = key
        if old is not None and old != key:
            for engine in self._idle.pop(old, []):
                self._retire(old, engine)

    def _key(self, settings: Settings) -> tuple[object, ...]:
        data = settings.data_dir
        return (str(data), str(settings.engine), scope(settings), store_version(data))

    @contextmanager
    def lease(self, settings: Settings) -> Iterator[Engine]:
        """An engine over the store as it is now, for this caller alone until returned."""
        key = self._key(settings)
        with self._cond:
            self._make_latest(key)
            while not self._idle.get(key) and self._open.get(key, 0) >= self.size:
                self._cond.wait()
            engine = self._idle[key].pop() if self._idle.get(key) else None
            if engine is None:
                self._open[key] = self._open.get(key, 0) + 1
        if engine is None:
            try:
                engine = _connect(settings)
            except BaseException:
                with self._cond:
                    self._open[key] -= 1
                    self._cond.notify_all()
                raise
        try:
            yield engine
        finally:
            with self._cond:
                if self._latest.get(key[:3]) == key:
                    self._idle.setdefault(key, []).append(engine)
                else:
                    self._retire(key, engine)
                self._cond.notify_all()

    def close(self) -> None:
        """Close every idle engine (engines in use are closed when returned)."""
        with self._cond:
            for key, engines in self._idle.items():
                for engine in engines:
                    self._retire(key, engine)
            self._idle.clear()
            self._latest.clear()


_pool: ContextVar[EnginePool | None] = ContextVar("teiten_engine_pool", default=None)


@contextmanager
def pooled(pool: EnginePool) -> Iterator[None]:
    """Inside this block :func:`open_engine` leases from ``pool`` (as do threads that copy
    the context, such as those a web framework runs handlers in)."""
    token = _pool.set(pool)
    try:
        yield
    finally:
        _pool.reset(token)


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The ``engine`` setting's engine over the data folder, for reading."""
    pool = _pool.get()
    if pool is not None:
        with pool.lease(settings) as engine:
            yield engine
        return
    engine = _connect(settings)
    try:
        yield engine
    finally:
        engine.close()


def run_query(settings: Settings, sql: str) -> pa.Table:
    """``teiten query``: one SQL statement over the friendly views."""
    with open_engine(settings) as engine:
        return engine.query(sql)


def stream_query(settings: Settings, sql: str, *, limit: int = 0) -> Iterator[pa.RecordBatch]:
    """``teiten query``: one statement's result in batches, never more than ``limit`` rows.

    The limit is applied by the engine (a ``LIMIT`` over the statement), so
    ``SELECT * FROM packets`` with a limit reads only what it returns, and
    without one the rows are passed on batch by batch instead of all at once.
    """
    with open_engine(settings) as engine:
        yield from engine.stream(sql, limit=limit)
