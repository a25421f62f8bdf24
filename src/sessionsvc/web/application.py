"""The Flask class of the app: no redirect built from ``Host``, no error after the view's answer."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response
from werkzeug.exceptions import NotFound
from werkzeug.routing import RequestRedirect

log = logging.getLogger(__name__)


class RelativeRedirect(RequestRedirect):
    """werkzeug's redirect to a route's canonical URL, with its path only, and no HTML."""

    def __init__(self, location: str, code: int) -> None:
        super().__init__(location)
        self.code = code

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        response = Response(status=self.code, headers={"Location": self.new_url})
        del response.headers["Content-Type"]  # no body
        return response


class App(Flask):
    """Flask, but its redirects never name a host, and after_request never undoes the view.

    werkzeug builds a slash redirect (``/api/docs`` to ``/api/docs/``) from the
    ``Host`` header, which is the caller's word: its path alone is the same
    place on whatever host the caller reached. Flask answers its routing
    redirects outside the error handlers, so it is replaced here.
    """

    def raise_routing_exception(self, request: Request) -> Any:
        redirect = request.routing_exception
        if isinstance(redirect, RequestRedirect):
            parts = urlsplit(redirect.new_url)
            location = parts.path + (f"?{parts.query}" if parts.query else "")
            if location.startswith("/") and not location.startswith("//"):
                raise RelativeRedirect(location, redirect.code) from None
            # Not a path of ours: no redirect at all (the error handlers answer 404).
            raise NotFound() from None
        return super().raise_routing_exception(request)

    def process_response(self, response: Response) -> Response:
        """Run the after_request hooks; one that fails leaves the view's answer as it was.

        By then the view has done its work (a session created, a token rotated):
        a 500 would tell the client it failed when it did not.
        """
        try:
            return super().process_response(response)
        except Exception:
            log.exception("an after_request hook failed; the view's answer is sent as it is")
            return response
