"""The dashboard pages of ``teiten serve``: server-rendered HTML, no JavaScript.

:data:`router` gathers the page routes, one module per page
(``page_overview``, ``page_port``, ``page_campaign``, ``page_source``,
``page_advisories``, ``page_files`` for the report download and the
stylesheet); :func:`error_page` is how :func:`teiten.serve.create_app`
answers an error outside ``/api/``. Each page calls the same
:mod:`teiten.app` use cases as the JSON API and publishes their results
through :meth:`Context.publish` before a template (autoescaped,
:mod:`teiten.serve.page_render`) shows them.
"""

from __future__ import annotations

from fastapi import APIRouter

from teiten.serve import (
    page_advisories,
    page_campaign,
    page_files,
    page_overview,
    page_port,
    page_session,
    page_source,
)
from teiten.serve.page_render import error_page

router = APIRouter(include_in_schema=False)
PAGES = (
    page_overview,
    page_port,
    page_campaign,
    page_source,
    page_session,
    page_advisories,
    page_files,
)
"""The page modules, each with its ``router``."""

for _page in PAGES:
    router.include_router(_page.router)

__all__ = ["error_page", "router"]
