import json
import math

import pandas as pd
import pytest

from overparam.sweep.keys import point_key
from overparam.sweep.store import PointRecord, Store


def test_point_key_is_stable_and_discriminating():
    a = point_key("s", "1", {"n": 3, "seed": 0, "x": 0.1})
    assert a == point_key("s", "1", {"seed": 0, "x": 0.1, "n": 3})  # order does not matter
    assert a != point_key("s", "1", {"n": 3, "seed": 1, "x": 0.1})
    assert a != point_key("s", "2", {"n": 3, "seed": 0, "x": 0.1})  # study version is part of the key
    assert a != point_key("t", "1", {"n": 3, "seed": 0, "x": 0.1})
    assert len(a) == 24


def test_store_roundtrip_and_exports(tmp_path):
    with Store(tmp_path / "r.sqlite") as st:
        mode = st._con.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        st.record(PointRecord("k1", "s", {"n": 1}, "done", {"err": 0.5, "curve": [1.0, 2.0]}, duration_s=0.1))
        st.record(PointRecord("k2", "s", {"n": 2}, "failed", error="boom"))
        st.record(PointRecord("k3", "s", {"n": 3}, "done", {"err": float("nan")}))
        assert st.done_keys() == {"k1", "k3"}
        assert st.done_keys(["k2", "k3"]) == {"k3"}
        df = st.results("s")
        assert list(df["key"]) == ["k1", "k2", "k3"]
        assert df.loc[0, "curve"] == [1.0, 2.0]
        assert math.isnan(df.loc[2, "err"])
        assert df.loc[1, "status"] == "failed" and df.loc[1, "error"] == "boom"
        # a later success replaces a failed row: still one row per key
        st.record(PointRecord("k2", "s", {"n": 2}, "done", {"err": 0.25}))
        assert len(st.results("s")) == 3 and st.done_keys() == {"k1", "k2", "k3"}
        st.to_csv(tmp_path / "r.csv")
        st.to_parquet(tmp_path / "r.parquet")
    csv = pd.read_csv(tmp_path / "r.csv")
    assert json.loads(csv.loc[0, "curve"]) == [1.0, 2.0]
    pq = pd.read_parquet(tmp_path / "r.parquet")
    assert pq["err"].iloc[1] == pytest.approx(0.25)


def test_a_column_mixing_lists_and_numbers_exports_to_parquet_and_csv(tmp_path):
    # the near-interpolators store holds such a column: a list at one part's points, a float at another's
    with Store(tmp_path / "r.sqlite") as st:
        st.record(PointRecord("k1", "s", {"n": 1}, "done", {"test_error": [0.5, 0.25]}))
        st.record(PointRecord("k2", "s", {"n": 2}, "done", {"test_error": 0.75}))
        st.record(PointRecord("k3", "s", {"n": 3}, "done", {"other": 1.0}))
        st.to_parquet(tmp_path / "r.parquet")
        st.to_csv(tmp_path / "r.csv")
        with pytest.raises(ValueError, match="study: no points of 'nope' in this store; it holds s"):
            st.to_csv(tmp_path / "x.csv", "nope")
    for df in (pd.read_parquet(tmp_path / "r.parquet"), pd.read_csv(tmp_path / "r.csv")):
        assert json.loads(df["test_error"].iloc[0]) == [0.5, 0.25] and json.loads(df["test_error"].iloc[1]) == 0.75
        assert pd.isna(df["test_error"].iloc[2])
    assert not (tmp_path / "x.csv").exists()
