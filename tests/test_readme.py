"""Every ```python block of README.md runs, as written, using public names only.

Each block runs in a fresh namespace (blocks are self-contained: a reader copies one, not the page), in a temporary
working directory, after seeding Python's, NumPy's and torch's global generators with 0, one thread per library.
A block fails the test when it raises, imports from a deep module (``from overparam.x import``) instead of
``import overparam as op``, or takes more than ``LIMIT_S`` seconds of this process's CPU time (the README promises
~10 s a block; CPU time, not wall time, so that a busy machine does not fail a block; the blocks run their points in
this process, ``op.SerialExecutor``).
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
LIMIT_S = 30.0


def python_blocks(text: str) -> list[tuple[str, int, str]]:
    """(section heading, line number, code) of every ```python fenced block, in order."""
    blocks, heading = [], "(top)"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            start = i + 1
            j = start
            while lines[j].strip() != "```":
                j += 1
            blocks.append((heading, start + 1, "\n".join(lines[start:j])))
            i = j
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("heading, line, code",
                         [pytest.param(h, n, c, id=f"L{n}-{re.sub(r'[^a-z0-9]+', '-', h.lower()).strip('-')}")
                          for h, n, c in BLOCKS])
def test_readme_block_runs(heading, line, code, tmp_path, monkeypatch):
    deep = re.findall(r"^\s*(?:from overparam\.\S+ import|import overparam\.)", code, flags=re.M)
    assert not deep, f"README line {line}: use `import overparam as op` public names, not {deep}"
    monkeypatch.chdir(tmp_path)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()  # CPU seconds of this process: a busy machine does not move it
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": f"readme_block_{line}"})
        elapsed = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    assert elapsed <= LIMIT_S, f"README line {line} ({heading}) took {elapsed:.1f} s > {LIMIT_S} s"
