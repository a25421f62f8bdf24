"""Delivering the events stream over HTTP: signed webhooks and Security Event Tokens.

``sessionsvc webhooks`` runs the delivery process (``delivery.Worker``): one
consumer group per endpoint on the events stream, retries in a Redis sorted
set, dead letters in a stream; no Flask here (the admin API is web.webhooks).
"""
