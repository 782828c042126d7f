"""Every README's "Python API" example runs as written.

A documented example that no longer runs is worse than none: the user copies it first. Each
package README's `## Python API` section holds ```python blocks; they run in order, in one
fresh interpreter per README, in an empty folder, on one thread, with no network (synthetic data
and tiny random-initialised models only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["er-core", "er-data", "er-features", "er-train", "er-eval"]
HEADING = "## Python API"


def api_blocks(readme: Path) -> list[str]:
    """The ```python blocks between the "Python API" heading and the next `## ` heading."""
    text = readme.read_text(encoding="utf-8")
    start = text.find(f"\n{HEADING}\n")
    if start < 0:
        return []
    section = text[start + len(HEADING) + 2 :]
    end = re.search(r"^## ", section, flags=re.MULTILINE)
    section = section[: end.start()] if end else section
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_blocks_are_found_only_in_the_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n```python\nbefore()\n```\n\n## Python API\n\ntext\n\n```python\na = 1\n```\n\n"
        "```sh\nnot python\n```\n\n```python\nb = a\n```\n\n## Next\n\n```python\nafter()\n```\n"
    )
    assert api_blocks(readme) == ["a = 1\n", "b = a\n"]
    readme.write_text("# x\n\n```python\nno_section()\n```\n")
    assert api_blocks(readme) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_python_api_example_runs(package, tmp_path):
    blocks = api_blocks(ROOT / "packages" / package / "README.md")
    assert blocks, f"{package}'s README has no ```python block under '{HEADING}'"
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "ER_THREADS": "1",
        "ER_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{package} README example failed:\n{done.stderr[-3000:]}"
