"""The command line: outputs, exit codes, and one-line errors for every bad value."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from overparam.cli import main

BASE = ["reproduce", "toy", "--scale", "test", "--workers", "1", "--quiet"]


def _run(args, **env):
    return subprocess.run([sys.executable, "-m", "overparam", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **env))


@pytest.mark.parametrize("args, param", [
    (["reproduce", "--scale", "huge"], "--scale"),
    (["reproduce", "nosuchstudy"], "unknown study 'nosuchstudy'"),
    (["reproduce", "--device", "tpu"], "--device"),
    (["reproduce", "--device", "cuda"], "--device"),
    (["reproduce", "--workers", "0"], "--workers"),
    (["reproduce", "--workers", "-3"], "--workers"),
    (["reproduce", "--workers", "two"], "--workers"),
    (["reproduce", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler"),
    (["report", "/nonexistent/folder"], "--out"),
    (["reproduce", "--no-such-flag"], "No such option"),
])
def test_bad_input_is_one_line_and_exit_2(args, param, tmp_path):
    if "cuda" in args:
        import torch
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    r = _run(args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and param in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_out_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    r = _run(["reproduce", "toy", "--out", str(f)])
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --out: {str(f)!r} is a file; give a folder (it is created when missing)"]


def test_no_command_prints_usage_and_no_empty_error_line():
    r = _run([])
    assert r.returncode == 2 and "Usage: overparam" in r.stdout + r.stderr
    assert not any(line.strip() == "error:" for line in r.stderr.splitlines()), r.stderr


def test_help_on_every_command():
    for cmd in ([], ["list"], ["reproduce"], ["report"], ["export"]):
        assert main([*cmd, "--help"]) == 0


def test_reproduce_report_export_and_exit_codes(tmp_path, capsys):
    out = tmp_path / "res"
    assert main([*BASE, "--out", str(out)]) == 0
    for name in ("results.sqlite", "index.html", "verdicts.json", "figures/toy/variance_vs_n.png"):
        assert (out / name).is_file(), name
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert {tuple(sorted(v)) for v in verdicts} == {
        ("claim", "comparison", "detail", "margin", "measured", "n", "predicted", "standard_error", "status", "study",
         "tolerance", "tolerance_derivation")}
    assert all(v["status"] == "pass" for v in verdicts) and verdicts[1]["measured"] == pytest.approx(1.0, abs=0.1)
    # the toy claim's tolerance is 4 standard errors of the mean over its 24 points
    assert verdicts[1]["n"] == 24 and verdicts[1]["tolerance"] == pytest.approx(4 * verdicts[1]["standard_error"])
    html_before = (out / "index.html").read_text()
    (out / "index.html").unlink()
    assert main(["report", str(out)]) == 0  # rebuilt without recomputing
    assert (out / "index.html").read_text().count("<img") == html_before.count("<img") == 1
    assert main(["export", str(out), "--to", str(tmp_path / "x.csv")]) == 0
    assert (tmp_path / "x.csv").read_text().count("\n") == 25  # header + 24 points
    # a failing verdict gives exit code 1
    r = _run(["report", str(out)], TOY_WRONG_THEORY="1")
    assert r.returncode == 1 and "FAIL [toy]" in r.stderr


def test_list_names_the_claim(capsys):
    assert main(["list"]) == 0
    assert "The sample mean of n i.i.d. N(0, 1) draws has variance 1/n." in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"SQLite format 3\x00" + b"\x00" * 200, b"not a database at all",
                                     "foreign"])
def test_a_damaged_or_foreign_store_is_one_line_exit_2_and_untouched(tmp_path, content):
    out = tmp_path / "res"
    out.mkdir()
    store = out / "results.sqlite"
    if content == "foreign":
        import sqlite3
        con = sqlite3.connect(store)
        con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        con.commit()
        con.close()
    else:
        store.write_bytes(content)
    before = store.read_bytes()
    for args in (["reproduce", "toy", "--scale", "test", "--workers", "1", "--quiet", "--out", str(out)],
                 ["report", str(out)], ["export", str(out), "--to", str(tmp_path / "x.csv")]):
        r = _run(args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and str(store) in lines[0], (args, r.stderr)
        assert "move it aside" in lines[0] and "Traceback" not in r.stderr
    assert store.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["results.sqlite"]


def test_a_second_run_into_a_busy_folder_is_refused_in_one_line(tmp_path):
    out = tmp_path / "res"
    env = dict(os.environ, TOY_SLEEP="0.3")
    first = subprocess.Popen([sys.executable, "-m", "overparam", *BASE, "--out", str(out)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "results.sqlite").exists():
        time.sleep(0.1)
    r = _run([*BASE, "--out", str(out)])
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: --out: ") and f"in use by another run (pid {first.pid}" in lines[0]
    assert first.wait(timeout=240) == 0
    assert _run([*BASE, "--out", str(out)]).returncode == 0  # free again once the first run is over


def test_ctrl_c_says_aborted_and_exits_130(tmp_path):
    import signal
    import time
    # the child starts with Ctrl-C's default disposition, as from a terminal: a process that inherits SIGINT
    # ignored (as it can from a test runner's parent) keeps it ignored, and Python then installs no handler
    p = subprocess.Popen([sys.executable, "-m", "overparam", *BASE, "--out", str(tmp_path / "res")],
                         env=dict(os.environ, TOY_SLEEP="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline, db = time.time() + 120, tmp_path / "res" / "results.sqlite"

    def stored() -> int:  # points in the store: the pool is up and the sweep is under way once one is there
        try:
            with sqlite3.connect(db, timeout=1) as con:
                return con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        except sqlite3.Error:
            return 0
    while time.time() < deadline and not (db.exists() and stored() >= 1):
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)  # 23 of the 24 one-second points still to run
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "aborted", err
