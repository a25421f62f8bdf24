"""The domain: what a session, its device, its claims and its place are; no Flask, no Redis."""
