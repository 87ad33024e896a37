"""The WSGI entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py kiosk.wsgi:app``."""

from kiosk import create_app
from kiosk.observability import configure_logging

# Before the app exists, so that configuration warnings are JSON lines too and Flask adds no
# plain-text handler of its own.
configure_logging()
app = create_app()
