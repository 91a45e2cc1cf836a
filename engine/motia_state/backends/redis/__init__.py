"""The Redis backends: one sans-I/O plan (`plan`), sent by a sync or an asyncio seam."""

from .plan import RedisPlan
from .seams import AsyncRedisBackend, RedisBackend

__all__ = ["AsyncRedisBackend", "RedisBackend", "RedisPlan"]
