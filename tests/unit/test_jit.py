"""teiten.jit: kernels compile on their first call; importing them does not import numba."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from teiten.jit import Kernel, kernel


@kernel(inline="always")
def _twice(x: int) -> int:  # pragma: no cover - jit
    return 2 * x


@kernel(nogil=True)
def _sum_twice(a: np.ndarray) -> int:  # pragma: no cover - jit
    total = 0
    for v in a:
        total += _twice(v)
    return total


def test_a_kernel_calling_a_kernel_compiles_on_first_call() -> None:
    this = sys.modules[__name__]
    assert isinstance(this._sum_twice, Kernel)  # type: ignore[attr-defined]
    assert "not compiled yet" in repr(this._sum_twice)
    assert _sum_twice(np.arange(5, dtype=np.int64)) == 20
    # both are numba dispatchers in the module's globals now, callable from Python too
    assert not isinstance(this._twice, Kernel)  # type: ignore[attr-defined]
    assert this._twice(4) == 8  # type: ignore[attr-defined]
    assert this._sum_twice(np.arange(3, dtype=np.int64)) == 6  # type: ignore[attr-defined]


def test_the_query_modules_import_without_numba() -> None:
    code = (
        "import sys\n"
        "import teiten.analysis.series, teiten.analysis.ports, teiten.app.traffic\n"
        "import teiten.store.writers, teiten.enrich.country, teiten.analysis.surge\n"
        "import teiten.cli.analysis\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_kernel_keeps_the_function_name_and_doc() -> None:
    @kernel()
    def documented(x: int) -> int:  # pragma: no cover - jit
        """Add one."""
        return x + 1

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Add one."
    assert documented(1) == 2


def test_bind_all_makes_every_dispatcher_before_any_call() -> None:
    code = (
        "import sys\n"
        "import teiten.store.registers as r\n"
        "from teiten.jit import Kernel, bind_all\n"
        "assert isinstance(r.__dict__['_merge'], Kernel)\n"
        "bind_all()\n"
        "assert not isinstance(r.__dict__['_merge'], Kernel) and 'numba' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_kernel_without_a_cache_folder_compiles_uncached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numba

    made: list[dict[str, object]] = []
    real = numba.njit

    def njit(**options: object) -> object:
        made.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(**options)

    monkeypatch.setattr(numba, "njit", njit)

    @kernel(cache=True)
    def plus_one(x: int) -> int:  # pragma: no cover - jit
        return x + 1

    assert plus_one(1) == 2
    assert made == [{"cache": True}, {"cache": False}]
