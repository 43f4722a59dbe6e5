"""Where the store's side work runs: a thread pool, or :data:`INLINE`, the caller's thread.

Ingest hands the rollup work of a batch or of a day's end to an
:class:`concurrent.futures.Executor` and collects the futures in a fixed order, so
the files it writes are the same with one thread or several; with one thread the
executor is :data:`INLINE`, which runs each job as it is submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Inline(Executor):
    """An executor that runs each job at once, in the submitting thread (an error is
    raised by :meth:`submit` itself, where the job ran)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        done: Future[T] = Future()
        done.set_result(fn(*args, **kwargs))
        return done


INLINE = Inline()
"""The caller's thread, as an executor."""


def pool(threads: int) -> Executor:
    """A pool of ``threads`` worker threads for 2 or more, else :data:`INLINE`."""
    return ThreadPoolExecutor(threads, "teiten-rollup") if threads > 1 else INLINE


def serial(threads: int) -> Executor:
    """One worker thread for 2 or more ``threads`` (jobs run one after another, in the
    order submitted), else :data:`INLINE`."""
    return ThreadPoolExecutor(1, "teiten-write") if threads > 1 else INLINE
