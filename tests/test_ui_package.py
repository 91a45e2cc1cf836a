"""The inspector's page ships in the wheel, whole, and reaches for nothing outside it.

The wheel is built from this tree (hatchling, without build isolation: no download), and
every file the page names, in index.html and in each module's imports, must be in it: a
page that works from a checkout but not from `pip install` is the failure this catches. No
file may load anything from another origin (the page runs offline, under a CSP of 'self').
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATIC = "motia_state/ui/static/"
# what the page may spell as a URL: XML namespaces, which name and never load
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml"}
# src="..." and href="..." in HTML; module specifiers (relative or /static/) in JS and CSS
REFERENCE = re.compile(
    r"""(?:src|href)="([^"]+)"|(?:\bfrom|\bimport\s*\(?|@import)\s*['"]((?:\.{1,2}/|/static/)[^'"]+)['"]"""
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("motia_state-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_every_file_the_page_names(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert STATIC + "index.html" in names
    todo, seen = [STATIC + "index.html"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in names, f"{name} is named by the page but not in the wheel"
        text = wheel.read(name).decode()
        for match in REFERENCE.finditer(text):
            ref = match[1] or match[2]
            if ref.startswith(("#", "data:", "/api/")) or ref in NAMESPACES:
                continue
            path = ref.removeprefix("/static/") if ref.startswith("/static/") else None
            if path is None:
                base = name.rsplit("/", 1)[0]
                path = (Path(base) / ref).as_posix().removeprefix(STATIC)
            todo.append(STATIC + str(Path(path).as_posix()).lstrip("./"))
    assert len([n for n in seen if n.endswith(".js")]) > 3, seen  # modules found by import
    assert any(n.endswith(".css") for n in seen)


def test_the_page_loads_nothing_from_another_origin(wheel: zipfile.ZipFile) -> None:
    for name in wheel.namelist():
        if not name.startswith(STATIC):
            continue
        text = wheel.read(name).decode()
        for url in re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s'\"`)]*", text):
            assert url in NAMESPACES, f"{name} names {url}"
