# syntax=docker/dockerfile:1.7
# The one image every Aperture service starts FROM: Python 3.11, the workspace's locked dependencies
# (CASA among them, about 2 GB) and the workspace's own packages, run as the non-root user `aperture`.
#
# Build it from the repository root before the service images (they name it in their FROM):
#   docker compose --profile build build base
#   (or: docker build -f docker/base.Dockerfile -t aperture-base:dev .)
# CASA publishes Linux wheels for x86_64 only, so the image is linux/amd64 (emulated on arm64 hosts).

# Aladin Lite, the HiPS viewer the previews service copies beside each HiPS, from the npm registry as
# services/previews/viewer/package-lock.json pins it; only its package goes into the image.
FROM node:20-bookworm-slim AS viewer
WORKDIR /viewer
COPY services/previews/viewer/package.json services/previews/viewer/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm

# uv from its own image, pinned to the release that wrote uv.lock.
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /uvx /usr/local/bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/aperture/venv \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/aperture/venv/bin:$PATH

RUN groupadd --system --gid 10001 aperture \
 && useradd --system --uid 10001 --gid aperture --home-dir /home/aperture --create-home \
        --shell /usr/sbin/nologin aperture

WORKDIR /opt/aperture/src

# Layer 1, the heavy one: third-party dependencies exactly as uv.lock pins them. It sees only the lock
# and the pyproject files, so a code change reuses it and CASA (casatools, casatasks, casadata: most of
# the image) is installed once. The cache mount keeps the downloaded wheels between builds, so even a
# lock change does not download CASA again.
COPY pyproject.toml uv.lock ./
COPY contracts/pyproject.toml contracts/
COPY shared/pyproject.toml shared/
COPY services/coordinator/pyproject.toml services/coordinator/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/calibration/pyproject.toml services/calibration/
COPY services/findcont/pyproject.toml services/findcont/
COPY services/imaging/pyproject.toml services/imaging/
COPY services/previews/pyproject.toml services/previews/
COPY services/footprint/pyproject.toml services/footprint/
COPY services/export/pyproject.toml services/export/
COPY cli/pyproject.toml cli/
COPY tools/testdata/pyproject.toml tools/testdata/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

# Layer 2, small: the workspace's own packages, installed (not linked) into the same environment.
COPY contracts contracts
COPY shared shared
COPY services services
COPY cli cli
COPY tools/testdata tools/testdata
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

COPY --chmod=0755 docker/healthcheck.py /usr/local/bin/aperture-healthcheck
COPY --from=viewer /viewer/node_modules/aladin-lite /opt/aperture/aladin-lite

# Where the services write: per-job CASA scratch and spooled uploads. Owned by the service user; named
# volumes mounted here start with this ownership. matplotlib (imported by casatasks) wants a writable
# config directory, which a read-only root does not give it elsewhere.
RUN mkdir -p /var/lib/aperture/scratch /var/lib/aperture/uploads \
 && chown -R aperture:aperture /var/lib/aperture
ENV APERTURE_CASA_SCRATCH_ROOT=/var/lib/aperture/scratch \
    MPLCONFIGDIR=/tmp/matplotlib \
    APERTURE_LOG_JSON=true \
    HOME=/home/aperture

USER aperture
WORKDIR /home/aperture
