"""WSGI entry point: `gunicorn cds_service.wsgi:app`."""
from . import create_app

app = create_app()
