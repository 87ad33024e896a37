"""The WSGI entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py kiosk.wsgi:app``."""

from kiosk import create_app

app = create_app()
