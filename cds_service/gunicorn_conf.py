"""gunicorn settings for the CDS service (`cds-service serve` uses them; `gunicorn -c` can too).

Every value can be overridden with the GUNICORN_CMD_ARGS environment variable or the
serve command's flags.
"""
import multiprocessing
import os

bind = os.environ.get("CDS_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("CDS_WORKERS", min(4, multiprocessing.cpu_count())))
worker_class = "gthread"  # threads let one worker wait on FHIR servers while serving other calls
threads = int(os.environ.get("CDS_THREADS", "4"))
timeout = 30  # a hung worker is recycled; requests themselves stop at CDS_DEADLINE_MS
graceful_timeout = 20
keepalive = 5
max_requests = 20000  # recycle workers now and then, jittered so they do not restart together
max_requests_jitter = 2000
preload_app = False  # each worker builds its own app: thread pools and DB pools must not cross a fork
# Behind nginx (`cds-service serve`) these are raised above nginx's own limits. Alone (`--no-proxy`), a header
# line may still be 20 KB so that a 16 KB bearer token reaches the app (which refuses longer ones with 401).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 20 * 1024
accesslog = None  # the app writes one structured line per hook call
errorlog = "-"
loglevel = os.environ.get("CDS_LOG_LEVEL", "info").lower()
wsgi_app = "cds_service.wsgi:app"


def on_starting(server):
    """In the master, before any worker forks: the folder where workers share their Prometheus samples."""
    from cds_service.metrics import setup_multiprocess

    folder = setup_multiprocess()
    server.log.info("Prometheus multiprocess folder: %s", folder)


def child_exit(server, worker):
    from cds_service.metrics import worker_exited

    worker_exited(worker.pid)


def post_worker_init(worker):
    """Once the worker has built the app: move every start-up object (models, schemas, card files) into the
    permanent generation, so the collector's full passes no longer walk them. On by default (CDS_GC_FREEZE=false
    turns it off): at one connection under gunicorn, p99 went from 55-111 ms to 11-12 ms (docs/performance.md)."""
    if os.environ.get("CDS_GC_FREEZE", "true").lower() in ("1", "true", "yes"):
        import gc

        gc.collect()
        gc.freeze()


def worker_exit(server, worker):
    """In the worker, as it stops: write the issued-card records still queued."""
    from cds_service.hooks.feedback import flush_all

    flush_all()
