"""The sweep engine on the toy study: executors agree, failures are stored, finished points are never rerun."""

from pathlib import Path

import pytest

from overparam.pipeline import STORE_NAME, reproduce, study_points
from overparam.studies import get
from overparam.sweep.engine import run_sweep
from overparam.sweep.executors import LocalExecutor, SerialExecutor
from overparam.sweep.store import Store


def metrics_by_key(path: Path) -> dict:
    with Store(path) as st:
        return {r.key: (r.status, r.metrics) for r in st.records("toy")}


def test_serial_and_pool_agree_and_rerun_skips(tmp_path, toy_env):
    log = tmp_path / "log"
    toy_env(TOY_LOG=log)
    toy = get("toy")
    pts = study_points(toy, "test")
    with Store(tmp_path / "a.sqlite") as st:
        s1 = run_sweep(toy, pts, st, SerialExecutor(), scale="test")
    ex = LocalExecutor(workers=2)
    with Store(tmp_path / "b.sqlite") as st:
        s2 = run_sweep(toy, pts, st, ex, scale="test")
        n_calls = len(log.read_text().splitlines())
        s3 = run_sweep(toy, pts, st, ex, scale="test")  # everything finished: nothing runs
    ex.close()
    assert s1.n_run == s2.n_run == len(pts) == 24
    assert s3.n_run == 0 and s3.n_skipped == 24
    assert len(log.read_text().splitlines()) == n_calls == 48  # 24 serial + 24 pool, none on the rerun
    assert metrics_by_key(tmp_path / "a.sqlite") == metrics_by_key(tmp_path / "b.sqlite")


def test_failing_point_is_recorded_and_sweep_goes_on(tmp_path, toy_env):
    toy_env(TOY_FAIL=1)
    outcome = reproduce(["toy"], "test", tmp_path, SerialExecutor(), quiet=True)
    recs = metrics_by_key(tmp_path / STORE_NAME)
    failed = [k for k, (status, _) in recs.items() if status == "failed"]
    assert len(failed) == 1 and len(recs) == 24
    with Store(tmp_path / STORE_NAME) as st:
        err = [r.error for r in st.records("toy") if r.status == "failed"][0]
    assert "RuntimeError: this point fails on purpose" in err
    completeness = outcome.verdicts[0]
    assert completeness.claim == "every point of the sweep finished" and not completeness.passed
    assert completeness.measured == 23


def test_worker_killed_midsweep_is_survived_by_local_pool(tmp_path, toy_env):
    toy_env(TOY_DIE_ONCE=tmp_path / "died", TOY_LOG=tmp_path / "log")
    toy = get("toy")
    pts = study_points(toy, "test")
    ex = LocalExecutor(workers=2)
    with Store(tmp_path / "r.sqlite") as st:
        summary = run_sweep(toy, pts, st, ex, scale="test")
    ex.close()
    assert (tmp_path / "died").exists()  # a worker really died
    assert summary.n_failed == 0
    toy_env(TOY_DIE_ONCE="")
    with Store(tmp_path / "ref.sqlite") as st:
        run_sweep(toy, pts, st, SerialExecutor(), scale="test")
    assert metrics_by_key(tmp_path / "r.sqlite") == metrics_by_key(tmp_path / "ref.sqlite")


def test_same_seed_same_numbers(tmp_path):
    toy = get("toy")
    p = study_points(toy, "test")[5]
    assert toy.run(dict(p)) == toy.run(dict(p))


def test_a_study_that_runs_on_cpu_only_keeps_its_cpu_keys_and_says_so(tmp_path, toy_env, capsys):
    from dataclasses import dataclass

    from toy_study import ToyStudy

    from overparam.pipeline import device_for
    from overparam.studies import register

    @dataclass
    class CpuToy(ToyStudy):
        name = "toy-cpu"
        devices = ("cpu",)

    study = register(CpuToy())
    assert device_for(study, "cuda") == "cpu" and device_for(get("toy"), "cuda") == "cuda"
    assert study_points(study, "test", "cuda") == study_points(study, "test", "cpu")
    reproduce(["toy-cpu"], "test", tmp_path, SerialExecutor(), device="cuda", quiet=None)
    assert "[toy-cpu] runs on cpu whatever --device says (it declares cpu)" in capsys.readouterr().err
    again = reproduce(["toy-cpu"], "test", tmp_path, SerialExecutor(), device="cpu", quiet=True)
    assert again.sweeps[0].n_skipped == 24  # the run 'on cuda' stored CPU points under CPU keys
