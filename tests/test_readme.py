"""The README's examples run as written: each ```python block after a ``<!-- runs:
tests/test_readme.py -->`` line, in a subprocess of its own, in an empty folder, with no
backend named by the environment; where the README says what it prints, it prints that."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

MARK = "<!-- runs: tests/test_readme.py -->"
BLOCK = re.compile(
    re.escape(MARK) + r"\n```python\n(?P<code>.*?)```\n(?:\nprints\n\n```\n(?P<out>.*?)```)?",
    re.S,
)


def _examples() -> list[tuple[str, str | None]]:
    text = (ROOT / "README.md").read_text()
    found = [(m["code"], m["out"]) for m in BLOCK.finditer(text)]
    assert len(found) == text.count(MARK)  # every mark is followed by a block
    return found


EXAMPLES = _examples()


def _heading(code: str) -> str:
    text = (ROOT / "README.md").read_text()
    before = text[: text.index(code)]
    return re.findall(r"^#+ (.*)$", before, re.M)[-1]


@pytest.mark.parametrize(
    ("code", "printed"), EXAMPLES, ids=[_heading(code) for code, _ in EXAMPLES]
)
def test_the_example_runs(code: str, printed: str | None, tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("MOTIA_STATE_URL", "MOTIA_STATE_CONFIG")
    }
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if printed is not None:
        assert result.stdout == printed
