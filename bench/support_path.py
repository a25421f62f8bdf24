"""Put tests/ on sys.path: bench/ shares tests/support.py (gunicorn, ports, credentials)."""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
