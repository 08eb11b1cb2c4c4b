# CDS Hooks service for dialysis electrolytes: Python slim, non-root, dependencies from requirements.lock.
# `cds-service serve` is the entry point; it runs gunicorn (and, where the serve command fronts it with a
# buffering reverse proxy, Debian's nginx, installed below). Readiness is the container health check.
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CDS_CARDS_DIR=/app/cards \
    CDS_FEEDBACK_DB=/data/feedback.sqlite3 \
    CDS_BIND=0.0.0.0:8080

# nginx from Debian; its default site is removed (the serve command writes its own configuration) and the
# folders it writes to at run time belong to the service user, who runs it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default

WORKDIR /app
RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid cds --home-dir /app --shell /usr/sbin/nologin cds \
    && mkdir -p /data /var/lib/nginx /var/log/nginx \
    && chown cds:cds /data /var/lib/nginx /var/log/nginx

# Every dependency pinned and hash-checked (scripts/lock.sh writes the lock from pyproject.toml), then the
# package itself without dependencies or network. Editable, so that the code finds the card files and
# fixtures beside it in /app exactly as in a checkout.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
RUN pip install --no-deps --no-build-isolation -e . && pip check
# Card files are data the informaticists own: baked in here, or mounted over /app/cards.
COPY cards ./cards
# Demo/test patients: the card preview (CDS_PREVIEW=true) draws its scenarios from them.
COPY fhir_fixtures ./fhir_fixtures

USER cds
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, sys, urllib.request; port = os.environ.get('CDS_BIND', ':8080').rsplit(':', 1)[1]; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health/ready', timeout=2).status == 200 else 1)"
CMD ["cds-service", "serve"]
