"""``GET /docs``: Swagger UI served from the service itself, never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a CDN, which an
offline machine cannot reach. The files come from the ``swagger-ui-bundle-v2`` package
(Swagger UI 5, which reads the OpenAPI 3.1 documents FastAPI writes) and are served under
``/docs/assets/``. Build the app with ``docs_url=None, redoc_url=None`` and call
:func:`install_docs` (ReDoc has no packaged copy, so it is left out).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# Swagger UI's defaults would fetch a validator badge from swagger.io; off.
UI_PARAMETERS = {"validatorUrl": None, "deepLinking": True}


def install_docs(app: FastAPI) -> None:
    """``GET /docs`` (Swagger UI on ``app.openapi_url``) and its files under ``/docs/assets``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL of the page carries it.
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title}: API documentation",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters=UI_PARAMETERS,
        )
