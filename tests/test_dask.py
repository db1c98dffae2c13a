"""A Dask LocalCluster on loopback gives the local pool's results, and survives a worker killed mid-sweep."""

import pytest

distributed = pytest.importorskip("distributed")

from overparam.pipeline import study_points  # noqa: E402
from overparam.studies import get  # noqa: E402
from overparam.sweep.engine import run_sweep  # noqa: E402
from overparam.sweep.executors import DaskExecutor, SerialExecutor  # noqa: E402
from overparam.sweep.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c, Client(c) as client:
        yield client


def _metrics(path):
    with Store(path) as st:
        return {r.key: r.metrics for r in st.records("toy") if r.status == "done"}


def test_dask_matches_local_and_survives_worker_death(tmp_path, toy_env, cluster):
    toy = get("toy")
    pts = study_points(toy, "test")
    with Store(tmp_path / "ref.sqlite") as st:
        run_sweep(toy, pts, st, SerialExecutor())
    # the first point to run kills its worker process; the nanny restarts it and Dask reruns the point
    toy_env(TOY_DIE_ONCE=tmp_path / "died")
    cluster.run(lambda p=str(tmp_path / "died"): __import__("os").environ.__setitem__("TOY_DIE_ONCE", p))
    with Store(tmp_path / "dask.sqlite") as st:
        summary = run_sweep(toy, pts, st, DaskExecutor(client=cluster))
    assert (tmp_path / "died").exists()
    assert summary.n_failed == 0 and summary.n_run == 24
    assert _metrics(tmp_path / "dask.sqlite") == _metrics(tmp_path / "ref.sqlite")


def test_scheduler_address_that_does_not_answer():
    from overparam.sweep.executors import connect_dask
    with pytest.raises(ValueError, match="^scheduler: no Dask scheduler answers"):
        connect_dask("tcp://127.0.0.1:9", timeout=1)
