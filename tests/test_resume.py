"""A sweep killed with SIGKILL halfway and started again loses nothing and recomputes nothing."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from overparam.pipeline import STORE_NAME
from overparam.sweep.store import Store

CMD = [sys.executable, "-m", "overparam", "reproduce", "toy", "--scale", "test", "--workers", "2", "--quiet"]


def _done(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(path, timeout=5)
        n = con.execute("SELECT COUNT(*) FROM points WHERE status='done'").fetchone()[0]
        con.close()
        return n
    except sqlite3.OperationalError:
        return 0


def _rows(path: Path) -> dict:
    with Store(path) as st:
        return {r.key: r for r in st.records("toy")}


def test_sigkill_halfway_then_resume(tmp_path):
    env = dict(os.environ, TOY_SLEEP="0.15", TOY_LOG=str(tmp_path / "calls"))
    out = tmp_path / "run"
    proc = subprocess.Popen(CMD + ["--out", str(out)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = out / STORE_NAME
    deadline = time.time() + 120
    while _done(store) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, no cleanup
    proc.wait()
    before = _rows(store)
    finished = {k: r for k, r in before.items() if r.status == "done"}
    assert 10 <= len(finished) < 24, "the kill should land mid-sweep"
    calls_before = (tmp_path / "calls").read_text().splitlines()

    env["TOY_LOG"] = str(tmp_path / "calls_after")
    done = subprocess.run(CMD + ["--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _rows(store)
    assert len(after) == 24 and all(r.status == "done" for r in after.values())
    # every point finished before the kill is there exactly once and untouched (not recomputed)
    for k, r in finished.items():
        assert after[k].finished_at == r.finished_at and after[k].metrics == r.metrics
    rerun = (tmp_path / "calls_after").read_text().splitlines()
    assert len(rerun) == 24 - len(finished)
    finished_ids = {f"{r.params['n']} {r.params['seed']}" for r in finished.values()}
    assert not finished_ids & set(rerun)
    assert len(calls_before) >= len(finished)

    # the final store equals that of an uninterrupted run
    ref = tmp_path / "ref"
    env.pop("TOY_LOG")
    env["TOY_SLEEP"] = "0"
    subprocess.run(CMD + ["--out", str(ref)], env=env, check=True, capture_output=True, timeout=300)
    assert {k: r.metrics for k, r in _rows(ref / STORE_NAME).items()} == {k: r.metrics for k, r in after.items()}
