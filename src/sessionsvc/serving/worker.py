"""gunicorn's threaded worker, leaving new connections to a worker with a thread free.

Every gthread worker watches the one listening socket, and the first to call
``accept()`` gets a new connection, which stays with it for as long as it lives
(behind nginx's keepalive pool, 100 requests). That was most often a busy
worker: its main thread is awake already, handing requests to its threads,
while an idle worker's must first be woken; verify's threads wait on Redis
without the GIL, so a busy worker's main thread is rarely held up. Behind nginx
the busy worker took the new connections until it held nearly all of them and
the other idled (docs/benchmarks.md, "Even load across workers").

``BalancingThreadWorker`` (gunicorn.conf.py's ``worker_class``) stops watching
the socket for ``ACCEPT_DELAY`` when a connection arrives while all its threads
are busy, so that a worker with a thread free takes it. A connection still
waiting after ``PATIENCE`` such delays found no free worker: a busy worker takes
it then, so that none waits longer. Everything else is gunicorn's gthread.
"""

from __future__ import annotations

import select
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# An idle worker is woken and accepts within a millisecond or two, even on a
# busy machine; a connection that has waited PATIENCE x ACCEPT_DELAY for one has
# none to go to. Only requests on new connections can wait so, 2 to 7 in 100
# behind nginx in the benchmark (keepalive_requests, and the connections nginx
# opens beyond its pool of 16), but that is enough to show in the p99: at 16
# connections 14 to 18 ms against gthread's 11 to 14 ms; 10 ms x 3 made it 23
# to 81 ms.
ACCEPT_DELAY = 0.005  # seconds
PATIENCE = 1


class BalancingThreadWorker(ThreadWorker):
    """gthread, but a worker whose threads are all busy leaves a new connection to the others."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accept_after: float | None = None  # while leaving new connections to others
        self.found_waiting = 0  # delays in a row after which a connection still waited

    def busy(self) -> bool:
        """Return whether every thread has a request (running or queued for one)."""
        idle = len(self.keepalived_conns) + len(self.pending_conns)
        return self.nr_conns - idle >= self.cfg.threads

    def accept(self, listener: Any) -> None:
        if self.busy():
            self.leave_to_others()
            return
        super().accept(listener)

    def leave_to_others(self) -> None:
        self.accept_after = time.monotonic() + ACCEPT_DELAY
        self.set_accept_enabled(False)

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and self.accept_after is not None:
            if time.monotonic() < self.accept_after:
                return  # the run loop asks again on its next turn
            self.accept_after = None
            waiting = self.connection_waiting()
            self.found_waiting = self.found_waiting + 1 if waiting else 0
            if waiting and self.busy():
                if self.found_waiting < PATIENCE:
                    self.leave_to_others()
                    return
                self.take_waiting()
            self.found_waiting = 0
        super().set_accept_enabled(enabled)

    def take_waiting(self) -> None:
        """Accept the connections that no worker with a thread free took."""
        for listener in self.sockets:  # non-blocking since gthread first watched them
            while self.nr_conns < self.worker_connections:
                accepted = self.nr_conns
                super().accept(listener)
                if self.nr_conns == accepted:  # none left
                    break

    def connection_waiting(self) -> bool:
        """Return whether a connection waits to be accepted on any listening socket."""
        poll = select.poll()  # not select(): no limit on the descriptors' numbers
        for listener in self.sockets:
            poll.register(listener, select.POLLIN)
        return bool(poll.poll(0))

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # Wake up when the delay is over, even if nothing else happens by then.
        if self.accept_after is not None:
            timeout = min(timeout, max(0.0, self.accept_after - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
