# CDS Hooks service for dialysis electrolytes: python slim, non-root, gunicorn, health check.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CDS_CARDS_DIR=/app/cards \
    CDS_FEEDBACK_DB=/data/feedback.sqlite3 \
    CDS_BIND=0.0.0.0:8080

WORKDIR /app
# nginx: the buffering front proxy `cds-service serve` starts in front of gunicorn (slow clients, error pages)
RUN apt-get update && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 cds && useradd --system --uid 10001 --gid cds --home-dir /app --shell /usr/sbin/nologin cds \
    && mkdir -p /data && chown cds:cds /data

COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
RUN pip install ".[postgres]"
# Card files are data the informaticists own: mounted or baked in, read at start-up.
COPY cards ./cards

USER cds
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status == 200 else 1)"
CMD ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8080"]
