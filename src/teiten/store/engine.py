"""Moved to ``teiten.engine`` (the protocol) and ``teiten.app.engine`` (opening one from settings).

A transitional alias while the house is reshaped (issue #13); nothing new imports it.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    import importlib

    home = "teiten.engine" if name == "Engine" else "teiten.app.engine"
    return getattr(importlib.import_module(home), name)
