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
def load(name: str) -> Script:
    """The script ``lua/<name>.lua`` with the shared helpers of ``lua/include`` in front."""
    root = lua_dir()
    parts = [p.read_bytes() for p in sorted((root / "include").glob("*.lua"))]
    parts.append((root / f"{name}.lua").read_bytes())
    text = b"\n".join(parts)
    return Script(name, text, hashlib.sha1(text).hexdigest())
