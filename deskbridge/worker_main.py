"""Dramatiq entry point for production workers: `dramatiq deskbridge.worker_main`."""

from deskbridge.settings import get_settings
from deskbridge.wiring import build

components = build(get_settings())
broker = components.broker
