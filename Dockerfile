# syntax=docker/dockerfile:1
# One image for every deskbridge service of docker-compose.yml (api, worker, scheduler, migrate):
# the services differ only in their command. The default command runs the API.

# Build stage: install the project (no dev extras) into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/deskbridge
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY api ./api
COPY connectors ./connectors
COPY deskbridge ./deskbridge
COPY infra ./infra
COPY store ./store
COPY sync ./sync
COPY worker ./worker
# urllib3-future (caldav's HTTP client) from source with URLLIB3_NO_OVERRIDE: urllib3 stays urllib3.
RUN URLLIB3_NO_OVERRIDE=1 /opt/deskbridge/bin/pip install --no-binary urllib3-future . \
    && /opt/deskbridge/bin/python -m compileall -q /opt/deskbridge/lib

# Runtime stage: the virtual environment only, run by an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/deskbridge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The metrics folder exists, owned by the user, so a new named volume mounted on it (compose's
# `metrics`) starts with that owner and every process can write its metric files there.
RUN groupadd --system --gid 10001 deskbridge \
    && useradd --system --uid 10001 --gid deskbridge --home-dir /srv/deskbridge --create-home deskbridge \
    && install -d -o deskbridge -g deskbridge /srv/deskbridge/metrics
COPY --from=build /opt/deskbridge /opt/deskbridge
USER deskbridge:deskbridge
WORKDIR /srv/deskbridge
EXPOSE 8000
# Exec form, and `deskbridge api` execs uvicorn: uvicorn is PID 1 and gets SIGTERM itself for a
# graceful stop. `deskbridge api` checks the settings first (a missing DESKBRIDGE_SECRET_KEY stops
# the container at once, where uvicorn's supervisor would start its processes again and again).
CMD ["deskbridge", "api", "--host", "0.0.0.0", "--port", "8000"]
