"""The console's router: every page under ``/console``, its stylesheet, its error pages,
its security headers and its CSRF check, in one place (create_app registers it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from attest.console import audit_pages, pages, policies_pages, reviews, subjects
from attest.console.web import (
    BASE,
    ConsoleConfig,
    check_csrf,
    environment,
    error_handlers,
    security_headers,
)
from attest.settings import Settings

__all__ = ["console_router", "template_config"]

STATIC = Path(__file__).parent / "static"

#: Every console page handler. A page module adds its list here (one line).
HANDLERS: list[Any] = [
    *pages.HANDLERS,
    *reviews.HANDLERS,
    *subjects.HANDLERS,
    *audit_pages.HANDLERS,
    *policies_pages.HANDLERS,
]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def console_router(settings: Settings) -> Router:
    config = ConsoleConfig(
        secure_cookies=settings.issuer.startswith("https://"),
        session_ttl=settings.console_session_ttl,
    )
    static = create_static_files_router(
        path="/static", directories=[STATIC], name="console-static", include_in_schema=False
    )
    return Router(
        path=BASE,
        route_handlers=[*HANDLERS, static],
        dependencies={"console": Provide(lambda: config, use_cache=True, sync_to_thread=False)},
        exception_handlers=error_handlers(),
        before_request=check_csrf,
        middleware=[security_headers],
        include_in_schema=False,
    )
