"""`cds-service` command line."""
from __future__ import annotations

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter
    from gunicorn.errors import HaltServer

    from . import gunicorn_conf

    # Fail fast, in the parent, on a bad configuration or card file, before forking workers.
    from .config import load_config
    from .hooks.cards import CardLibrary
    cfg = load_config()
    CardLibrary(cfg["CDS_CARDS_DIR"])
    proxy = None if args.no_proxy else _proxy(args, cfg)
    if proxy is False:
        return 2

    class _Arbiter(Arbiter):
        def reap_workers(self):
            if proxy is not None and proxy.exited():
                raise HaltServer("nginx exited; stopping (the service cannot be reached without it)", 1)
            super().reap_workers()

        def stop(self, graceful=True):
            if proxy is not None:
                proxy.stop()  # first: nginx stops accepting and finishes what gunicorn is still serving
            super().stop(graceful)

    class _App(BaseApplication):
        def load_config(self):
            for key in ("bind", "workers", "worker_class", "threads", "timeout", "graceful_timeout", "keepalive",
                        "max_requests", "max_requests_jitter", "preload_app", "accesslog", "errorlog", "loglevel",
                        "limit_request_line", "limit_request_fields", "limit_request_field_size",
                        "on_starting", "child_exit"):  # hooks: shared Prometheus samples across workers
                self.cfg.set(key, getattr(gunicorn_conf, key))
            self.cfg.set("bind", f"{args.host}:{args.port}")
            if args.workers:
                self.cfg.set("workers", args.workers)
            if proxy is not None:
                self.cfg.set("bind", f"unix:{proxy.settings.upstream_socket}")
                # nginx bounds the request line and headers (32 KB a line); gunicorn must not refuse below that
                self.cfg.set("limit_request_line", 0)
                self.cfg.set("limit_request_fields", 32768)
                self.cfg.set("limit_request_field_size", proxy_limits.HEADER_LINE_BYTES + 1024)
                self.cfg.set("when_ready", lambda server: server.log.info(
                    "nginx (pid %s) listening on %s:%s in front of %s", proxy.start(), args.host, args.port,
                    proxy.settings.upstream_socket))
                self.cfg.set("on_exit", lambda server: (proxy.stop(), proxy.cleanup()))

        def load(self):
            from . import create_app
            return create_app()

        def run(self):
            _Arbiter(self).run()

    from . import proxy as proxy_limits
    _App().run()
    return 0


def _proxy(args: argparse.Namespace, cfg):
    """The nginx front (configuration written and checked), or False after saying why it cannot run."""
    from .proxy import NginxProxy, ProxyError, ProxySettings, make_runtime_dir

    runtime = make_runtime_dir()
    try:
        proxy = NginxProxy(ProxySettings(args.host, args.port, cfg["CDS_MAX_BODY_BYTES"], runtime,
                                         worker_processes=args.proxy_workers))
        proxy.write_and_check()
    except ProxyError as exc:
        import shutil

        shutil.rmtree(runtime, ignore_errors=True)
        print(f"cds-service serve: {exc}", file=sys.stderr)
        return False
    return proxy


def _demo(args: argparse.Namespace) -> int:
    from .devtools.demo import run_demo
    return run_demo(host=args.host, port=args.port, fhir_port=args.fhir_port, synthea=not args.no_synthea,
                    workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description="CDS Hooks 2.0 service for dialysis electrolytes.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service: nginx in front of gunicorn")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=0, help="worker processes (default: gunicorn_conf)")
    serve.add_argument("--no-proxy", action="store_true",
                       help="gunicorn alone on --host/--port, without nginx (development only: slow clients "
                            "can then hold every worker thread)")
    serve.add_argument("--proxy-workers", type=int, default=1, help="nginx worker processes (default 1)")
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="start a FHIR server with the demo patients, then the service against it")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--fhir-port", type=int, default=8090)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--no-synthea", action="store_true", help="skip loading the large Synthea history")
    demo.set_defaults(func=_demo)

    _register_plugins(sub)
    return parser


def _register_plugins(sub) -> None:
    """Subcommands contributed by other modules (cards lint, feedback report, ...)."""
    for module_name in ("cds_service.authoring.cli", "cds_service.reporting.cli"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ImportError:
            continue
        module.register(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
