"""The `/v1` API: one module per resource under endpoints/."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
