"""``teiten serve``: the dashboard pages and the JSON API over one store, read only.

:func:`create_app` builds the ASGI application (FastAPI); :mod:`teiten.cli.serve`
runs it with uvicorn. Routes call the use cases of :mod:`teiten.app` only;
everything they answer passes the secrecy policy (:meth:`Context.publish`) and
every response the guards of :mod:`teiten.serve.security`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from teiten.app.engine import pooled
from teiten.config import Settings
from teiten.errors import DependencyError, NotFoundError, StoreError, TeitenError, first_line
from teiten.escape import terminal
from teiten.serve.context import Context, ServeOptions

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

log = logging.getLogger("teiten.serve")


def _status(e: TeitenError) -> int:
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, StoreError | DependencyError):
        return 503
    return 400


def _validation_message(errors: Any) -> str:
    """The first problem of a request's parameters, as one line."""
    for err in errors or ():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
        return str(terminal(f"{where}: {err.get('msg', 'invalid value')}", 300))
    return "invalid request"


def _warm(context: Context, stop: threading.Event) -> None:
    """Fill the caches the first requests need — the secrecy policy's addresses, the report
    of all data, its HTML downloads — step by step until ``stop`` is set (one line in the
    log if it fails: the requests will meet the same error and answer it)."""
    from teiten.serve import api, page_files

    def download(lang: str) -> Callable[[], object]:
        return lambda: page_files.report_file(context, lang, "html")

    # the secrecy policy, the report of all data, and the downloads the overview links to
    steps: list[Callable[[], object]] = [context.secrecy, lambda: api.report(context)]
    steps += [download("ja"), download("en")]
    try:
        with pooled(context.engines):
            for step in steps:
                if stop.is_set():
                    return
                step()
    except Exception as e:
        log.warning("warming the caches failed: %s", first_line(e))


def create_app(settings: Settings, options: ServeOptions | None = None) -> FastAPI:
    """The server over ``settings``' data folder: pages at ``/``, the API at ``/api/v1``."""
    try:
        from fastapi import FastAPI
        from fastapi.exceptions import RequestValidationError
        from starlette.exceptions import HTTPException
    except ImportError:
        raise DependencyError(
            "teiten serve needs FastAPI and uvicorn (dependencies of teiten): reinstall it"
        ) from None
    import anyio

    from teiten.serve import api, pages
    from teiten.serve.security import Guard, Pooled

    context = Context(settings, options or ServeOptions())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        warming = threading.Thread(target=_warm, args=(context, stop), name="teiten-warm")
        if context.options.warm:
            warming.start()
        yield
        stop.set()  # a query under way finishes: the engines are never left mid-statement
        if warming.is_alive():
            await anyio.to_thread.run_sync(warming.join)
        context.engines.close()

    app = FastAPI(
        lifespan=lifespan,
        title="teiten",
        version=version("teiten"),
        description="Read-only API of a teiten store: ports, trends, alerts, campaigns, "
        "sessions, sources, indicators, advisories, notification feeds.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: never
        redoc_url=None,
    )
    app.state.context = context
    app.add_middleware(Pooled, pool=context.engines)
    app.add_middleware(Guard, options=context.options)
    app.include_router(api.router)
    app.include_router(pages.router)

    def failure(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return api.error(status, message)
        return pages.error_page(request, status, message)

    @app.exception_handler(TeitenError)
    async def teiten_error(request: Request, e: TeitenError) -> Response:
        return failure(request, _status(e), first_line(e, 500))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        return failure(request, 422, _validation_message(e.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Response:
        message = e.detail if isinstance(e.detail, str) else "error"
        response = failure(request, e.status_code, str(terminal(message, 300)))
        for k, v in (e.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> Response:
        log.exception("internal error on %s", terminal(request.url.path, 300))
        return failure(request, 500, "internal error (see the server's log)")

    return app


__all__ = ["Context", "ServeOptions", "create_app"]
