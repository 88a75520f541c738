# One image, three entrypoints: mediaflow-api, mediaflow-operator, mediaflow-worker.
#
# BASE_IMAGE is any Debian bookworm image. Users with a registry keep the default; the local
# development environment, which reaches no registry, builds its own with debootstrap
# (hack/base-image.sh) and passes it here.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Certificates of a TLS-intercepting proxy between this build and PyPI, if there is one
# (PEM text). They are trusted in this stage only and never reach the final image.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/build-extra.crt \
        && update-ca-certificates >/dev/null; \
    fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# uv installs exactly what uv.lock pins; it stays in this stage.
ARG UV_VERSION=0.13.9
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/opt/mediaflow UV_PYTHON=/usr/bin/python3 UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY core ./core
COPY api ./api
COPY operator ./operator
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# ffmpeg (and ffprobe), cwebp, avifenc, libmagic: the tools the worker drives.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 ca-certificates ffmpeg webp libavif-bin libmagic1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin mediaflow
COPY --from=build /opt/mediaflow /opt/mediaflow
ENV PATH=/opt/mediaflow/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Numeric, so that Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 10001:10001
WORKDIR /tmp
CMD ["mediaflow-api"]
