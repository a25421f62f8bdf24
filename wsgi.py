"""The gunicorn entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from sessionsvc import create_app

app = create_app()
