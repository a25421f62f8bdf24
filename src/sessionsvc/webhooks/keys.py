"""The delivery's Redis keys: one consumer group and retry set per endpoint, two streams."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryKeys:
    """Names the keys of the delivery under the service's key prefix."""

    prefix: str
    events: str  # the events stream (extension.events_stream)

    def group(self, endpoint: str) -> str:
        """Return an endpoint's consumer group on the events stream."""
        return f"webhooks:{endpoint}"

    def retries(self, endpoint: str) -> str:
        """Return an endpoint's sorted set of retries, scored by when each is due (ms)."""
        return f"{self.prefix}webhooks:retries:{endpoint}"

    @property
    def dead(self) -> str:
        """The stream of dead letters: deliveries given up."""
        return f"{self.prefix}webhooks:dead"

    @property
    def deliveries(self) -> str:
        """The stream recording each attempt (capped): what the admin API lists."""
        return f"{self.prefix}webhooks:deliveries"
