"""The dashboard pages of ``teiten serve``: server-rendered HTML, no JavaScript.

:data:`router` gathers the page routes (overview, port, campaign, source,
session, advisory checker, report download, the stylesheet);
:func:`error_page` is how :func:`teiten.serve.create_app` answers an error
outside ``/api/``. Each page calls the same :mod:`teiten.app` use cases as the
JSON API and publishes their results through :meth:`Context.publish`.
"""

from __future__ import annotations

from fastapi import APIRouter

from teiten.serve.page_render import error_page

router = APIRouter(include_in_schema=False)

__all__ = ["error_page", "router"]
