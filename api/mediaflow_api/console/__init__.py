"""The web console: static HTML, CSS and JS modules in `static/`, served by the API itself.

`GET /` answers the console's page, `/console/*` its assets. Both are left out of the
OpenAPI schema (they are not part of the API) and carry a strict Content-Security-Policy:
nothing inline, nothing from another origin except the object storage's public endpoint,
which result previews and downloads (presigned URLs) are read from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import MediaType, Response, Router, get
from litestar.static_files import create_static_files_router

from mediaflow_api.settings import ApiSettings

STATIC = Path(__file__).parent / "static"
ASSETS_PATH = "/console"


def storage_origin(settings: ApiSettings) -> str:
    """`scheme://host[:port]` of the endpoint presigned result URLs are signed for."""
    parts = urlsplit(settings.s3_public_endpoint or settings.s3_endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: ApiSettings) -> str:
    """The console's CSP: its own origin only, plus the storage origin for results.

    `blob:` lets the page show the files the user picked (object URLs of local files) and
    results it has read (previews, downloads under their own name) without uploading twice.
    """
    storage = storage_origin(settings)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": f"'self' blob: {storage}",
        "media-src": f"'self' blob: {storage}",
        "connect-src": f"'self' {storage}",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(settings: ApiSettings) -> dict[str, str]:
    """Headers of every console response.

    No Cross-Origin-Opener-Policy: browsers ignore it on plain-HTTP origins other than
    localhost (the local release's `http://10.244.0.1:30080`) and log an error for it.
    """
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        # Presigned URLs and job ids stay out of other sites' logs.
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",  # for browsers that ignore frame-ancestors
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def console_router(settings: ApiSettings) -> Router:
    """`GET /` (the page) and `/console/*` (its assets), with the security headers."""
    headers = security_headers(settings)
    page = (STATIC / "index.html").read_bytes()

    async def add_headers(response: Any) -> Any:
        response.headers.update(headers)
        return response

    @get("/", include_in_schema=False, sync_to_thread=False)
    def index() -> Response[bytes]:
        return Response(
            page,
            media_type=MediaType.HTML,
            headers={"Cache-Control": "no-cache"},
        )

    assets = create_static_files_router(
        path=ASSETS_PATH,
        directories=[STATIC],
        name="console",
        include_in_schema=False,
    )
    return Router(path="/", route_handlers=[index, assets], after_request=add_headers)
