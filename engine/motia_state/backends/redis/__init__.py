"""The Redis backends, in layers (see ARCHITECTURE.md):

* `plan`: what each request is in Redis commands and Lua scripts (sans-I/O);
* `route`: routing (one server, or a cluster's slots), accounting and retries
  (sans-I/O), yielding three primitives: send to a node, sleep, refresh;
* `outcome`: what a reply or failure means, and whether to send again (pure);
* `wire`: the one typed adapter around redis-py's connection API;
* `sync`, `aio`, `cluster`: the seams that carry the primitives out.
"""

from .aio import AsyncRedisBackend
from .cluster import AsyncClusterBackend, ClusterBackend
from .plan import RedisPlan
from .sync import RedisBackend

__all__ = [
    "AsyncClusterBackend",
    "AsyncRedisBackend",
    "ClusterBackend",
    "RedisBackend",
    "RedisPlan",
]
