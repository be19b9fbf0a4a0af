"""`/docs`: Swagger UI served from the pinned `swagger-ui-bundle` package (no CDN, works offline), with a store
picker so "Try it out" reaches tenant routes from 127.0.0.1.

No inline script: the page loads the bundle and `kernel/static/docs.js` from this server, so its CSP can say
`script-src 'self'`. The picker sends `X-Tenant-ID`; which routes honour it is the tenancy plugin's setting.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from quart import Quart, Response, send_file
from quart_schema import hide
from swagger_ui_bundle import swagger_ui_path

from kernel.problems import Problem

TENANT_HEADER = "X-Tenant-ID"
_OWN = Path(__file__).parent / "static"
# Only these files are served: nothing else of either folder is reachable by name.
ASSETS = {
    "swagger-ui.css": Path(swagger_ui_path) / "swagger-ui.css",
    "swagger-ui-bundle.js": Path(swagger_ui_path) / "swagger-ui-bundle.js",
    "docs.js": _OWN / "docs.js",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<p style="font-family: sans-serif; margin: 1em 2em">
<label>Store (sent as {header} by "Try it out"; <code>soko tenants list</code> shows the ids):
<input id="soko-tenant" size="40" data-header="{header}" data-openapi="/openapi.json"></label>
</p>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs.js"></script>
</body>
</html>
"""


def install_docs(app: Quart, title: str) -> None:
    page = _PAGE.format(title=escape(title), header=TENANT_HEADER)

    @app.get("/docs")
    @hide  # the page that shows the API document is not part of it (nor are its assets)
    async def docs() -> Response:
        return Response(page, content_type="text/html; charset=utf-8")

    @app.get("/docs/assets/<name>")
    @hide
    async def docs_asset(name: str) -> Response:
        path = ASSETS.get(name)
        if path is None:
            raise Problem(404, "not_found", "No such file.")
        return await send_file(path)
