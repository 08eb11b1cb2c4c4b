"""`cds-service` command line."""
from __future__ import annotations

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter
    from gunicorn.errors import HaltServer

    from . import gunicorn_conf
    from . import proxy as proxy_limits

    # Fail fast, in the parent, on a bad configuration, rule declaration or card file, before forking workers.
    from .clinical.rules import RegistryError, check_registry
    from .config import ConfigError, load_config
    from .hooks.cards import CardFileError, CardLibrary
    try:
        cfg = load_config()
        check_registry()
        CardLibrary(cfg["CDS_CARDS_DIR"])
    except (ConfigError, RegistryError, CardFileError) as exc:
        print(f"cds-service: not starting: {exc}", file=sys.stderr)
        return 2
    bind = serve_bind(args.host, args.port)
    proxy = None if args.no_proxy else _proxy(bind, args, cfg)
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
            self.cfg.set("bind", bind)
            if args.workers:
                self.cfg.set("workers", args.workers)
            if proxy is not None:
                self.cfg.set("bind", f"unix:{proxy.settings.upstream_socket}")
                # nginx bounds the request line and headers (32 KB a line); gunicorn must not refuse below that
                self.cfg.set("limit_request_line", 0)
                self.cfg.set("limit_request_fields", 32768)
                self.cfg.set("limit_request_field_size", proxy_limits.HEADER_LINE_BYTES + 1024)
                self.cfg.set("when_ready", lambda server: server.log.info(
                    "nginx (pid %s) listening on %s in front of %s", proxy.start(), bind,
                    proxy.settings.upstream_socket))
                self.cfg.set("on_exit", lambda server: (proxy.stop(), proxy.cleanup()))

        def load(self):
            from . import create_app
            return create_app()

        def run(self):
            _Arbiter(self).run()

    _App().run()
    return 0


def _proxy(bind: str, args: argparse.Namespace, cfg):
    """The nginx front on ``bind`` (configuration written and checked), or False after saying why it cannot run."""
    from .proxy import NginxProxy, ProxyError, ProxySettings, make_runtime_dir

    host, _, port = bind.rpartition(":")
    runtime = make_runtime_dir()
    try:
        proxy = NginxProxy(ProxySettings(host.strip("[]"), int(port), cfg["CDS_MAX_BODY_BYTES"], runtime,
                                         worker_processes=args.proxy_workers))
        proxy.write_and_check()
    except ProxyError as exc:
        import shutil

        shutil.rmtree(runtime, ignore_errors=True)
        print(f"cds-service serve: {exc}", file=sys.stderr)
        return False
    return proxy


def serve_bind(host: str | None, port: int | None, environ=None) -> str:
    """HOST:PORT to listen on: the flags, else CDS_BIND (HOST:PORT), else 0.0.0.0:8080."""
    import os

    environ = os.environ if environ is None else environ
    default_host, _, default_port = (environ.get("CDS_BIND") or DEFAULT_BIND).rpartition(":")
    if not default_port.isdigit():
        raise SystemExit(f"CDS_BIND must be HOST:PORT, got {environ.get('CDS_BIND')!r}")
    return f"{host or default_host or '0.0.0.0'}:{port or int(default_port)}"


DEFAULT_BIND = "0.0.0.0:8080"


def _demo(args: argparse.Namespace) -> int:
    from .devtools.demo import run_demo
    return run_demo(host=args.host, port=args.port, fhir_port=args.fhir_port, synthea=not args.no_synthea,
                    workers=args.workers)


def _demo_call(args: argparse.Namespace) -> int:
    from .devtools.demo import call_demo
    return call_demo(args.name, raw=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description="CDS Hooks 2.0 service for dialysis electrolytes.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the service: nginx in front of gunicorn",
        description="Run the service as shipped: Debian's nginx on HOST:PORT as a buffering reverse proxy in front "
                    "of gunicorn (cds_service/gunicorn_conf.py) on a private unix socket. Settings come from the "
                    "CDS_* environment variables (see the README); the process refuses to start on a bad setting or "
                    "card file, or when nginx is missing (use --no-proxy to run gunicorn alone).")
    serve.add_argument("--host", default=None,
                       help=f"address to listen on (default: the host part of CDS_BIND, else {DEFAULT_BIND.split(':')[0]})")
    serve.add_argument("--port", type=int, default=None,
                       help=f"port to listen on (default: the port part of CDS_BIND, else {DEFAULT_BIND.split(':')[1]})")
    serve.add_argument("--workers", type=int, default=0,
                       help="worker processes (default: CDS_WORKERS, else the CPU count, at most 4)")
    serve.add_argument("--no-proxy", action="store_true",
                       help="gunicorn alone on HOST:PORT, without nginx (development only: slow clients can then "
                            "hold every worker thread)")
    serve.add_argument("--proxy-workers", type=int, default=1, help="nginx worker processes (default: %(default)s)")
    serve.set_defaults(func=_serve)

    demo = sub.add_parser(
        "demo", help="start a FHIR server with the demo patients, then the service against it",
        description="Start the pinned test FHIR server with the demo patients (times moved to now), then the CDS "
                    "service against it with JWT checks off and the card preview on, and print requests to try. "
                    "Ctrl-C stops both.")
    demo.add_argument("--host", default="127.0.0.1", help="address the CDS service listens on (default: %(default)s)")
    demo.add_argument("--port", type=int, default=8080, help="port of the CDS service (default: %(default)s)")
    demo.add_argument("--fhir-port", type=int, default=8090,
                      help="port of the demo FHIR server, on 127.0.0.1 (default: %(default)s)")
    demo.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: %(default)s)")
    demo.add_argument("--no-synthea", action="store_true",
                      help="skip loading the large Synthea patient history (faster start)")
    demo.set_defaults(func=_demo)
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="{call}")
    from .devtools.demo import request_names
    call = demo_sub.add_parser(
        "call", help="send one of the demo's requests to the running demo and show its cards",
        description="Send one of the requests the running demo wrote (var/demo/requests/NAME.json) to its service "
                    "and print the cards. Works from any directory.")
    call.add_argument("name", metavar="NAME", help="the request: " + ", ".join(request_names()))
    call.add_argument("--json", action="store_true", help="print the whole JSON answer instead of a summary")
    call.set_defaults(func=_demo_call)

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
