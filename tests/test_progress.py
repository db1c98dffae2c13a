"""Progress: ETA from measured durations per part, plain lines off a terminal, a summary per study."""

import math
import os
import subprocess
import sys
from collections import Counter

import pytest

from overparam.sweep.progress import DurationModel


def test_eta_weighs_each_part_by_its_own_measured_duration():
    m = DurationModel()
    for _ in range(10):
        m.add("cheap", 0.1)
    m.add("costly", 10.0)
    m.add("costly", 30.0)
    # 5 cheap points (0.1 s) and 3 costly ones (mean 20 s) on 2 workers: (0.5 + 60) / 2
    assert m.remaining(Counter(cheap=5, costly=3), parallel=2) == pytest.approx(30.25)
    # a part never measured is estimated by the mean of all measured points (40 + 1) / 12
    assert m.remaining(Counter(new=1), parallel=1) == pytest.approx(41 / 12)
    # nothing measured yet: unknown, not a made-up number
    assert math.isnan(DurationModel().remaining(Counter(a=1), 1))


def test_plain_lines_and_a_summary_when_output_is_not_a_terminal(tmp_path):
    env = dict(os.environ, OVERPARAM_PROGRESS_INTERVAL="0")
    args = [sys.executable, "-m", "overparam", "reproduce", "toy", "--scale", "test", "--workers", "1",
            "--out", str(tmp_path)]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any(line.startswith("[toy (test)] 24/24 points, 0 failed") and "all studies 24/24" in line
               for line in lines), r.stderr
    assert "[toy (test)] done: 24 computed, 0 skipped (already in the store), 0 failed" in r.stderr
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert "[toy (test)] done: 0 computed, 24 skipped (already in the store), 0 failed" in again.stderr
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert "[toy" not in quiet.stderr
