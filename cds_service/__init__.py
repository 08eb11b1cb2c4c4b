"""CDS Hooks 2.0 service for dialysis patients with post-session cramps and spasms."""
from __future__ import annotations

__version__ = "0.1.0"


def create_app(config=None):
    """Flask app factory (imported lazily so that `cds-service cards lint` stays light)."""
    from .app import create_app as _create_app

    return _create_app(config)


__all__ = ["create_app", "__version__"]
