"""The one place that decides which Redis keys the engine reads and writes.

Layout, for the default prefix ``motia:state:`` and a group ``orders``::

    motia:state:orders                     hash   field = item key, value = encoded value
    motia:state#v{motia:state:orders}      hash   field = item key, value = item version (>= 2);
                                                  field '' = the group's version floor
    motia:state#x{motia:state:orders}      zset   member = item key, score = expiry (ms)
    motia:state#d{motia:state:orders}      string the group's deadline (ms) when it expires
                                                  whole; '-' on Cluster once that is recorded
    motia:state#deadlines                  zset   member = group, score = its deadline
                                                  (standalone)
    motia:state#expiring                   set    groups that have expiries (standalone)
    motia:state#changes                    stream one entry per change (standalone)
    motia:state#changes{motia:state:orders}stream the group's change records (cluster)
    motia:state#bridge                     string lease of the one running keyspace bridge
    motia:state#writes                     pub/sub channel: the bridge's write markers
    motia:state#writes{<tag of slot>}      sharded channel: the same, per slot (cluster)
    motia:state#probe                      hash   the bridge's probe, written and deleted
    motia:state#i{motia:state:orders}<hex> string an idempotency key's receipt: the call's
                                                  fingerprint and result (expires on its own)

Why it looks like this:

* The data hash is exactly ``<prefix><group>`` so that ``redis-cli HGETALL`` reads it
  and ``prefix="state:"`` shares data with Motia v1's engine.
* Every key that is not a data hash starts with the *meta root*: the prefix with
  its last character changed (``motia:state:`` -> ``motia:state#``). Such a key can
  never start with the prefix, so no legal group name can ever collide with
  engine metadata, and a SCAN for ``<prefix>*`` sees data hashes only.
* On Redis Cluster one script may only touch keys in one hash slot. A group's
  auxiliary keys therefore carry a hash tag that hashes to the same slot as the
  data hash (see `slot_tag`), whatever the group name contains.
* A group that expires whole (``expire_group``, a ``ttl=`` view, ``group_ttl``) has every
  key above PEXPIREAT its deadline, the Cluster stream included, so the server removes
  them together. Its deadline key outlives them (by a week, lua/include/group.lua) so
  that the sweeper, or the group's next write, can still find the expiry and record it;
  the ``#deadlines`` registry lets a standalone sweep ask only for the groups that are
  due, where Cluster, which cannot keep a registry across slots, finds the deadline
  keys by SCAN.
"""

from __future__ import annotations

import hashlib
from binascii import crc_hqx
from functools import lru_cache

from .errors import InvalidInput

DEFAULT_PREFIX = "motia:state:"
SLOTS = 16384
_GLOB_SPECIAL = frozenset("*?[]\\")


def key_slot(key: bytes) -> int:
    """The Redis Cluster slot of ``key`` (CRC16 of its hash tag, or of the whole key)."""
    return crc_hqx(_hashed_part(key), 0) % SLOTS


def _hashed_part(key: bytes) -> bytes:
    start = key.find(b"{")
    if start > -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


@lru_cache(maxsize=1)
def _synthetic_tags() -> tuple[bytes, ...]:
    """For every slot, the shortest decimal string that hashes to it: found by counting
    up once (about 170,000 CRCs, some 50 ms, on first use)."""
    tags: list[bytes | None] = [None] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        candidate = b"%d" % n
        slot = crc_hqx(candidate, 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = candidate
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def synthetic_tag(slot: int) -> bytes:
    """A short brace-free string that hashes to ``slot``."""
    return _synthetic_tags()[slot]


def slot_tag(data_key: bytes) -> bytes:
    """A brace-free string whose CRC slot equals ``data_key``'s.

    Usually that is the data key's own hash tag, or the whole data key. A data
    key with no valid tag but a ``}`` in it (groups like ``}y`` or ``{}x``)
    cannot be embedded in braces, so a short synthetic tag with the same slot
    stands in for it.
    """
    hashed = _hashed_part(data_key)
    if len(hashed) != len(data_key) or b"}" not in data_key:
        return hashed
    return synthetic_tag(key_slot(data_key))


def escape_glob(text: bytes) -> bytes:
    """Escape glob characters so SCAN MATCH takes ``text`` literally."""
    return b"".join(b"\\" + bytes([c]) if chr(c) in _GLOB_SPECIAL else bytes([c]) for c in text)


class KeyLayout:
    """Key names for one prefix. ``cluster=True`` keeps each group's change stream in its slot."""

    __slots__ = ("_cache", "cluster", "meta_root", "prefix")
    _CACHE_SIZE = 4096  # groups whose key lists are remembered: names are reused constantly

    def __init__(self, prefix: str = DEFAULT_PREFIX, *, cluster: bool = False) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise InvalidInput("prefix must be a non-empty str, e.g. 'motia:state:'")
        if "{" in prefix or "}" in prefix:
            raise InvalidInput("prefix must not contain '{' or '}': it would change hash slots")
        self.prefix = prefix.encode("utf-8")
        last = self.prefix[-1:]
        self.meta_root = self.prefix[:-1] + (b"%" if last == b"#" else b"#")
        self.cluster = cluster
        self._cache: dict[str, list[bytes]] = {}

    def data(self, group: str) -> bytes:
        # surrogateescape: the inverse of `group_of`, for a name read back that is not UTF-8
        return self.prefix + group.encode("utf-8", errors="surrogateescape")

    def _aux(self, kind: bytes, group: str) -> bytes:
        data_key = self.data(group)
        tag = slot_tag(data_key)
        # A tag that is the data key itself already names the group; any other
        # tag is shared by many groups, so the data key follows it. Tags never
        # contain '}', so the first '}' separates tag from suffix unambiguously.
        suffix = b"" if tag == data_key else data_key
        return self.meta_root + kind + b"{" + tag + b"}" + suffix

    def versions(self, group: str) -> bytes:
        return self._aux(b"v", group)

    def changes(self, group: str) -> bytes:
        if self.cluster:
            return self._aux(b"changes", group)
        return self.meta_root + b"changes"

    def marker_channel(self, slot: int | None = None) -> bytes:
        """Where write scripts bracket their notifications for the keyspace bridge.

        On Cluster there is one sharded channel per hash slot, tagged into that slot: a
        script may only publish to a channel of its own slot (SPUBLISH), and only the
        bridge's listener on the slot's master should hear it.
        """
        if slot is None:
            return self.meta_root + b"writes"
        return self.meta_root + b"writes{" + synthetic_tag(slot) + b"}"

    def probe(self, slot: int | None = None) -> bytes:
        """The key the bridge writes to prove notifications arrive (in ``slot`` on Cluster)."""
        if slot is None:
            return self.meta_root + b"probe"
        return self.meta_root + b"probe{" + synthetic_tag(slot) + b"}"

    def bridge_lease(self) -> bytes:
        return self.meta_root + b"bridge"

    def expiries(self, group: str) -> bytes:
        """Sorted set: item key -> expiry (ms since the epoch, server clock), items with a TTL."""
        return self._aux(b"x", group)

    def registry(self) -> bytes | None:
        """Set of the groups that have expiries, for cleanup; None on Cluster (found by SCAN)."""
        return None if self.cluster else self.meta_root + b"expiring"

    def deadline(self, group: str) -> bytes:
        """String: the group's deadline (ms since the epoch, server clock) while it expires
        whole, kept past it until the expiry is recorded; '-' on Cluster once it is."""
        return self._aux(b"d", group)

    def deadlines(self) -> bytes | None:
        """Sorted set: group -> deadline, for the sweeper; None on Cluster (found by SCAN)."""
        return None if self.cluster else self.meta_root + b"deadlines"

    def deadline_pattern(self) -> bytes:
        return escape_glob(self.meta_root + b"d{") + b"*"

    def group_of_deadline(self, key: bytes) -> str:
        """The group whose deadline key is ``key`` (the inverse of `deadline`)."""
        return self.group_of_expiries(key)

    def expiries_pattern(self) -> bytes:
        return escape_glob(self.meta_root + b"x{") + b"*"

    def group_of_expiries(self, key: bytes) -> str:
        """The group whose expiries set is ``key`` (the inverse of `expiries`)."""
        rest = key[len(self.meta_root) + 2 :]
        tag, _, suffix = rest.partition(b"}")
        return self.group_of(suffix or tag)

    def group_keys(self, group: str) -> list[bytes]:
        """Every key a script for ``group`` touches, in the order scripts expect (KEYS[1..7]:
        data, versions, changes, expiries, deadline, and off Cluster the two registries,
        of group deadlines and of groups with expiries; lua/include/ttl.lua)."""
        keys = self._cache.get(group)
        if keys is None:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            keys = [self.data(group), self.versions(group), self.changes(group)]
            keys += [self.expiries(group), self.deadline(group)]
            registry, deadlines = self.registry(), self.deadlines()
            if registry is not None and deadlines is not None:
                keys += [deadlines, registry]
            self._cache[group] = keys
        return keys

    def receipt(self, group: str, key: str, index: int = 0) -> bytes:
        """String: the receipt an idempotency key left on ``group`` (its ``index``-th server
        call, for a write sent in several), in the group's slot. The rest of the name is a
        digest of group, key and index: a key may be 8 KiB of anything, and the name is
        never read back."""
        data_key = self.data(group)
        named = hashlib.blake2b(b"%d:%s" % (len(data_key), data_key), digest_size=16)
        named.update(b"%d:" % index + key.encode("utf-8", errors="surrogateescape"))
        return self.meta_root + b"i{" + slot_tag(data_key) + b"}" + named.hexdigest().encode()

    def tracked_prefixes(self) -> tuple[bytes, bytes]:
        """What the near cache has the server track (CLIENT TRACKING BCAST PREFIX): every data
        hash and every expiries set. Every write of an item changes its data hash; an expiry
        change may touch only the expiries set. Neither prefix starts the other (the data
        prefix ends where the meta root differs), as the server requires."""
        return self.prefix, self.meta_root + b"x{"

    def group_of_tracked(self, key: bytes) -> str | None:
        """The group whose data hash or expiries set ``key`` is (None: neither)."""
        if key.startswith(self.prefix):
            return self.group_of(key)
        if key.startswith(self.meta_root + b"x{"):
            return self.group_of_expiries(key)
        return None

    def scan_pattern(self) -> bytes:
        return escape_glob(self.prefix) + b"*"

    def group_of(self, data_key: bytes) -> str:
        return data_key[len(self.prefix) :].decode("utf-8", errors="surrogateescape")
