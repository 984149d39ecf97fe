"""The transactional outbox: queue work with a change, deliver it after commit, at least once."""

from core.outbox.queue import enqueue

__all__ = ["enqueue"]
