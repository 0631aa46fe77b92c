"""ASGI entry point for production: `uvicorn deskbridge.asgi:app` (settings from the environment)."""

from deskbridge.settings import get_settings
from deskbridge.wiring import build, make_app

app = make_app(build(get_settings()))
