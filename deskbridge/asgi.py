"""ASGI entry point for production: `uvicorn deskbridge.asgi:app` (settings from the environment)."""

import gc

from deskbridge.settings import get_settings
from deskbridge.wiring import build, make_app

app = make_app(build(get_settings()))

# Everything loaded so far (modules, routes, models, schemas) lives as long as the process: kept out
# of the garbage collector's full passes, which would otherwise walk it all and pause every request
# in flight for a good part of a second now and then.
gc.freeze()
