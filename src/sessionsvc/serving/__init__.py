"""Serving: what is tied to gunicorn (its logger and refusals); the embedded Valkey."""
