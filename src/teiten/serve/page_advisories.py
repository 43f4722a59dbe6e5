"""The advisory checker (``/advisories``): is a router model at a firmware version affected?

A GET form (model, version, language); with both filled in, the verdict of
:func:`teiten.advisories.check.check` (status, message, fixed version and
date, actions, references as text). Below the form, every model the known
advisories list with its fixed version, so an analyst can pick one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from teiten.serve.api import context
from teiten.serve.context import Context
from teiten.serve.page_render import render

router = APIRouter(include_in_schema=False)


def known_models(ctx: Context, lang: str) -> list[dict[str, Any]]:
    """Every product of the known advisories: model, fixed version and date, advisory."""
    from teiten.advisories.model import load_advisories

    dirs = [Path(d) for d in ctx.options.advisories]
    out = []
    for a in load_advisories(dirs):
        for p in a.products:
            out.append(
                {
                    "model": p.model,
                    "fixed": str(p.fixed) if p.fixed else "",
                    "fixed_date": p.fixed_date.isoformat() if p.fixed_date else "",
                    "advisory": a.id,
                    "title": a.title.get(lang),
                }
            )
    return out


@router.get("/advisories", response_class=HTMLResponse)
def advisory_page(
    request: Request,
    model: Annotated[str, Query(max_length=128)] = "",
    version: Annotated[str, Query(max_length=64)] = "",
    lang: Literal["ja", "en"] = "ja",
) -> HTMLResponse:
    from teiten.advisories.check import check

    ctx = context(request)
    verdict = None
    if model.strip() and version.strip():
        dirs = [Path(d) for d in ctx.options.advisories]
        verdict = ctx.publish(check(model, version, lang=lang, extra_dirs=dirs).to_dict())
    models = ctx.publish(known_models(ctx, lang))
    return render(
        request, "advisories.html", model=model, version=version, verdict=verdict, models=models
    )
