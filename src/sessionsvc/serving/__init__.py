"""Serving: what is tied to gunicorn (its worker, logger and refusals); the embedded Valkey."""
