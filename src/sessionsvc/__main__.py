"""The ``sessionsvc`` command: Flask's command line for this app."""

from flask.cli import FlaskGroup

from sessionsvc import create_app

cli = FlaskGroup(create_app=create_app, help="Manage the session service.")

if __name__ == "__main__":
    cli()
