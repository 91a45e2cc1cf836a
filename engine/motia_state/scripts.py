"""The server-side Lua scripts, loaded once from the ``lua/`` directory.

Why EVALSHA scripts and not a FUNCTION library: a script is named by the SHA1 of
its text, so two versions of this engine sharing one server can never run each
other's code, and an edited script can never be shadowed by a stale copy left
on a long-lived server. Scripts also run wherever EVALSHA does (managed services
that forbid FUNCTION LOAD, Redis 6). Their one weakness, the script cache being
empty after a restart, failover or SCRIPT FLUSH, is handled in one place: the
first NOSCRIPT reply loads the script and retries once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path


@dataclass(frozen=True)
class Script:
    name: str
    text: bytes
    sha: str


def lua_dir() -> Path:
    """``motia_state/lua`` in an installed wheel; the repository's ``lua/`` in a checkout."""
    installed = Path(str(files("motia_state"))) / "lua"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "lua"


@cache
def load(name: str, codec: str = "json", receipted: bool = False) -> Script:
    """The script ``lua/<name>.lua`` with the helpers it needs from ``lua/include`` in front.

    A header line ``-- uses: a b`` puts ``include/a.lua`` and ``include/b.lua``
    before the script, in that order. ``$codec`` there stands for the value codec
    (``json`` or ``msgpack``), so one script source gives one constant text per
    codec. Only what a script uses is sent: a script's helpers are defined anew
    on every call, and the read scripts, which run most, need only the clock.

    ``receipted``: the variant that takes an idempotency key's receipt as its last KEYS and
    ARGV entries (lua/include/receipt.lua): the script's body, unchanged, becomes a function
    that runs only when no receipt answers the call.
    """
    root = lua_dir()
    body = (root / f"{name}.lua").read_bytes()
    uses = re.search(rb"^-- uses: (.+)$", body, re.MULTILINE)
    names = uses.group(1).decode().replace("$codec", codec).split() if uses else []
    if receipted:
        names += [n for n in ("status", "receipt") if n not in names]
        body = (
            b"local receipt_key, receipt_spec = receipt_take()\n"
            b"return receipt_run(receipt_key, receipt_spec, function()\n" + body + b"\nend)\n"
        )
    parts = [(root / "include" / f"{n}.lua").read_bytes() for n in names]
    text = b"\n".join([*parts, body])
    return Script(f"{name}+receipt" if receipted else name, text, hashlib.sha1(text).hexdigest())
