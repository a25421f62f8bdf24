"""`make bench`: the service against a bare Flask baseline, with wrk, direct and through nginx.

Run as a module from the repository's root (``python -m bench.run``), so that it
imports ``tests.support`` as it imports its own modules.
"""
