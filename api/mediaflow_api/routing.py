"""Answers to `OPTIONS` that list every method of the path.

Litestar 2 makes one OPTIONS handler per route as handlers are registered; when a path gets
more handlers later (GET and DELETE of `/jobs/{job_id}`), the handler it made first keeps
listing only the methods known then (litestar-org/litestar#4169, fixed in Litestar 3 only):
`OPTIONS /jobs/{id}` said `Allow: DELETE, OPTIONS`. The hook below answers from the route
the request was routed to, which knows all its methods.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT


def allow_header(methods: set[str] | list[str]) -> str:
    """The `Allow` value of a route with these methods."""
    return ", ".join(sorted(set(methods) | {"OPTIONS"}))


def answer_options(request: Request[Any, Any, Any]) -> Response[None] | None:
    """A `before_request` hook: OPTIONS answered with every method of the matched route;
    other requests go on (None)."""
    if request.method != "OPTIONS":
        return None
    handler = request.scope.get("route_handler")
    for route in request.app.routes:
        if isinstance(route, HTTPRoute) and handler in route.route_handlers:
            return Response(
                None,
                status_code=HTTP_204_NO_CONTENT,
                headers={"Allow": allow_header(route.methods)},
            )
    return None
