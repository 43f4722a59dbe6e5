"""How the decoder's numba functions are compiled, and the byte readers they share.

``kernel`` compiles an entry point, ``helper`` a function numba inlines into
its caller, ``called`` one that stays a separate function (see
:mod:`teiten.decode.kernel` for why reference counting is off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

U8 = npt.NDArray[np.uint8]
F = TypeVar("F", bound=Callable[..., Any])

# numba's (private) switch for reference counting; see the module docstring.
NO_REFCOUNT: dict[str, Any] = {"_nrt": False}


def kernel(func: F) -> F:
    """``@njit(cache=True, nogil=True)`` without reference counting, typed for mypy."""
    return cast(F, njit(cache=True, nogil=True, **NO_REFCOUNT)(func))


def helper(func: F) -> F:
    """Like :func:`kernel`, for the helpers numba inlines into the kernel (``inline="always"``)."""
    return cast(F, njit(cache=True, nogil=True, inline="always", **NO_REFCOUNT)(func))


def called(func: F) -> F:
    """Like :func:`kernel`, for link-layer helpers that stay separate functions.

    They take only the record bytes and positions (no :class:`Columns`), so a
    call costs little; inlining them into every caller made the kernel take
    minutes and gigabytes to compile.
    """
    return cast(F, njit(cache=True, nogil=True, **NO_REFCOUNT)(func))


@helper
def _u16(data: U8, p: int) -> int:
    return (int(data[p]) << 8) | int(data[p + 1])


@helper
def _u32(data: U8, p: int) -> int:
    return (_u16(data, p) << 16) | _u16(data, p + 2)
