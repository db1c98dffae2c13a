"""Recorded quick-scale results of each study, for the claims' sensitivity tests.

A claim that compares with theory is tested twice on the same recorded run: judged against the study's
``theory_model`` it passes, judged against a theory perturbed by an error that matters it fails. The recording is the
done rows of the study's last quick-scale sweep, exactly the table the pipeline hands to the claims.

Refresh one after a change to a study's ``run`` (its ``version`` changes) with

    python tests/study_results.py STUDY [--out DIR]

which runs ``overparam reproduce STUDY --scale quick`` into DIR (a temporary folder by default) and writes
``tests/data/STUDY-quick.json.gz``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data"


def path_of(study: str, scale: str = "quick") -> Path:
    return DATA / f"{study}-{scale}.json.gz"


def load(study: str, scale: str = "quick") -> pd.DataFrame:
    """The recorded results table of ``study`` at ``scale``."""
    with gzip.open(path_of(study, scale), "rt") as f:
        return pd.DataFrame(json.load(f))


def record(study: str, out: Path, scale: str = "quick") -> Path:
    """Write the done rows of ``study``'s sweep at ``scale`` in the store under ``out`` to ``tests/data``."""
    from overparam.pipeline import STORE_NAME, _on_device, resolve, study_results
    from overparam.studies import get
    from overparam.sweep.store import Store

    st, points, _ = resolve(get(study), scale)
    with Store(out / STORE_NAME) as store:
        df = study_results(store, st, _on_device(st, points, "cpu"))
    df = df[df["status"] == "done"].drop(columns=["status", "error", "duration_s", "host", "versions", "finished_at",
                                                  "key"], errors="ignore")
    DATA.mkdir(exist_ok=True)
    with gzip.open(path_of(study, scale), "wt") as f:
        json.dump([{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")], f)
    return path_of(study, scale)


def _plain(v):
    """A JSON value with every float at full precision (repr round-trips; pandas' to_json keeps only 15 decimal
    places, so 1.48e-15 became 1e-15) and NaN as null."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (list, dict)):  # NumPy scalars
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--scale", default="quick")
    a = ap.parse_args()
    from overparam.cli import main as cli
    out = a.out or Path(tempfile.mkdtemp(prefix=f"{a.study}-"))
    rc = cli(["reproduce", a.study, "--scale", a.scale, "--out", str(out), "--quiet"])
    print(f"reproduce exited {rc}; recorded {record(a.study, out, a.scale)}", file=sys.stderr)


if __name__ == "__main__":
    main()
