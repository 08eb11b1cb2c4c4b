"""`cds-service` command line."""
from __future__ import annotations

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from . import gunicorn_conf

    class _App(BaseApplication):
        def load_config(self):
            for key in ("bind", "workers", "worker_class", "threads", "timeout", "graceful_timeout", "keepalive",
                        "max_requests", "max_requests_jitter", "preload_app", "accesslog", "errorlog", "loglevel",
                        "on_starting", "child_exit"):  # hooks: shared Prometheus samples across workers
                self.cfg.set(key, getattr(gunicorn_conf, key))
            self.cfg.set("bind", f"{args.host}:{args.port}")
            if args.workers:
                self.cfg.set("workers", args.workers)

        def load(self):
            from . import create_app
            return create_app()

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
    _App().run()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .devtools.demo import run_demo
    return run_demo(host=args.host, port=args.port, fhir_port=args.fhir_port, synthea=not args.no_synthea,
                    workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description="CDS Hooks 2.0 service for dialysis electrolytes.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=0, help="worker processes (default: gunicorn_conf)")
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
