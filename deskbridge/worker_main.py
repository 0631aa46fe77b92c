"""Dramatiq entry point for production workers: `dramatiq deskbridge.worker_main`."""

import gc

from deskbridge.settings import get_settings
from deskbridge.wiring import build

components = build(get_settings())
broker = components.broker

# What is loaded by now lives as long as the process: kept out of the garbage collector's full
# passes, which would otherwise walk it all and stall every job in flight now and then.
gc.freeze()
