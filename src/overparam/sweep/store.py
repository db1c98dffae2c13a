"""SQLite store of points (WAL journal): one row per point, keyed by the point's stable hash.

The parent process is the only writer; every finished point is committed at once, so a crash loses at most the points
that were running. A row is written once per finished point: ``INSERT OR REPLACE`` only replaces a failed row by a
later attempt, since finished points are skipped before they are run.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key         TEXT PRIMARY KEY,
    study       TEXT NOT NULL,
    params      TEXT NOT NULL,
    metrics     TEXT,
    status      TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    error       TEXT,
    duration_s  REAL,
    host        TEXT,
    versions    TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS points_study ON points (study);
CREATE TABLE IF NOT EXISTS sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    study       TEXT NOT NULL,
    scale       TEXT NOT NULL,
    device      TEXT NOT NULL,
    n_points    INTEGER NOT NULL,
    n_run       INTEGER,
    n_failed    INTEGER,
    started_at  REAL NOT NULL,
    wall_s      REAL
);
"""


RESERVED = ("key", "study", "status", "error", "duration_s")


@dataclass
class PointRecord:
    """What running one point produced."""

    key: str
    study: str
    params: dict[str, Any]
    status: str  # 'done' | 'failed'
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    duration_s: float = 0.0
    host: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    finished_at: float = 0.0


def _json_safe(obj: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN) recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


class StoreError(ValueError):
    """The file is not a readable overparam store (damaged, truncated, or another program's database)."""


def check_store_file(path: Path) -> None:
    """Read-only check that an existing, non-empty ``path`` is an SQLite database with overparam's ``points``
    table; ``StoreError`` with one line naming the file and what to do otherwise. Writes nothing."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    advice = (f"move it aside (nothing was written to it) and run again, or give another --out; "
              f"'overparam report' cannot read it either")
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise StoreError(f"out: {str(path)!r} is not an SQLite database; {advice}")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            cols = {r[1] for r in con.execute("PRAGMA table_info(points)")} if "points" in tables else set()
            if "points" in tables:
                con.execute("SELECT count(*) FROM points").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"out: {str(path)!r} is damaged ({exc}); {advice}") from None
    if tables and not {"key", "study", "params", "metrics", "status"} <= cols:
        raise StoreError(f"out: {str(path)!r} is another program's database (tables: {', '.join(sorted(tables))}); "
                         f"{advice}")


class Store:
    """The results store at ``path`` (created with its tables when missing; ``StoreError`` when the file is
    damaged or not an overparam store, before anything is written)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_store_file(self.path)
        self._con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # writing -------------------------------------------------------------------------------------------
    def record(self, rec: PointRecord) -> None:
        """Commit one finished point."""
        self._con.execute(
            "INSERT OR REPLACE INTO points VALUES (?,?,?,?,?,?,?,?,?,?)",
            (rec.key, rec.study, json.dumps(rec.params, sort_keys=True),
             json.dumps(_json_safe(rec.metrics)), rec.status, rec.error or None, rec.duration_s, rec.host,
             json.dumps(rec.versions, sort_keys=True), rec.finished_at or time.time()))

    def begin_sweep(self, study: str, scale: str, device: str, n_points: int) -> int:
        cur = self._con.execute(
            "INSERT INTO sweeps (study, scale, device, n_points, started_at) VALUES (?,?,?,?,?)",
            (study, scale, device, n_points, time.time()))
        return int(cur.lastrowid)

    def end_sweep(self, sweep_id: int, n_run: int, n_failed: int, wall_s: float) -> None:
        self._con.execute("UPDATE sweeps SET n_run=?, n_failed=?, wall_s=? WHERE id=?",
                          (n_run, n_failed, wall_s, sweep_id))

    # reading -------------------------------------------------------------------------------------------
    def done_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        """Keys of finished ('done') points, restricted to ``keys`` when given."""
        rows = self._con.execute("SELECT key FROM points WHERE status='done'").fetchall()
        done = {r[0] for r in rows}
        return done if keys is None else done & set(keys)

    def last_sweeps(self) -> dict[str, dict[str, Any]]:
        """The latest sweep of each study: scale, device, sizes and wall time."""
        rows = self._con.execute(
            "SELECT study, scale, device, n_points, n_run, n_failed, started_at, wall_s FROM sweeps "
            "WHERE id IN (SELECT MAX(id) FROM sweeps GROUP BY study) ORDER BY id").fetchall()
        cols = ("study", "scale", "device", "n_points", "n_run", "n_failed", "started_at", "wall_s")
        return {r[0]: dict(zip(cols, r)) for r in rows}

    def records(self, study: str | None = None, keys: Iterable[str] | None = None) -> list[PointRecord]:
        """Stored rows as records, for one study and/or the given keys."""
        sql, args = "SELECT * FROM points", []
        if study is not None:
            sql, args = sql + " WHERE study=?", [study]
        rows = self._con.execute(sql + " ORDER BY key", args).fetchall()
        wanted = set(keys) if keys is not None else None
        out = []
        for r in rows:
            if wanted is not None and r[0] not in wanted:
                continue
            out.append(PointRecord(key=r[0], study=r[1], params=json.loads(r[2]),
                                   metrics=json.loads(r[3]) if r[3] else {}, status=r[4], error=r[5] or "",
                                   duration_s=r[6] or 0.0, host=r[7] or "",
                                   versions=json.loads(r[8]) if r[8] else {}, finished_at=r[9] or 0.0))
        return out

    def results(self, study: str | None = None, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per point: ``key``, ``study``, ``status``, ``error``, ``duration_s``, then the parameters and
        metrics as columns (a metric that is a list stays a list in its cell; a missing metric is NaN; a metric whose
        name is taken by a column before it is renamed ``metric_NAME``)."""
        rows = []
        for rec in self.records(study, keys):
            row = {"key": rec.key, "study": rec.study, "status": rec.status, "error": rec.error,
                   "duration_s": rec.duration_s}
            row.update({k: v for k, v in rec.params.items() if k not in RESERVED})
            row.update({(k if k not in row else f"metric_{k}"): (float("nan") if v is None else v)
                        for k, v in rec.metrics.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def durations(self, study: str, keys: Iterable[str], group: dict[str, str]) -> list[tuple[str, float]]:
        """(group[key], seconds) of the finished points among ``keys``: what earlier runs measured."""
        keys = list(keys)
        out = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._con.execute(f"SELECT key, duration_s FROM points WHERE status='done' AND study=? AND key IN "
                                     f"({','.join('?' * len(chunk))})", (study, *chunk)).fetchall()
            out += [(group.get(k, ""), float(d)) for k, d in rows if d is not None]
        return out

    def flat_results(self, study: str | None = None) -> pd.DataFrame:
        """:meth:`results` with every column that holds a list in any row written as JSON text in every row (a
        number becomes ``"0.5"``, a missing value stays missing), so that each column has one type — what CSV and
        Parquet need. Read a cell back with ``json.loads``. ``ValueError`` naming ``study`` when it has no points."""
        df = self.results(study)
        if study is not None and not len(df):
            known = sorted({r.study for r in self.records()})
            raise ValueError(f"study: no points of {study!r} in this store; it holds {', '.join(known) or 'none'}")
        for col in df.columns:
            if df[col].map(lambda v: isinstance(v, list)).any():
                df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and v != v)
                                      else json.dumps(v))
        return df

    def to_csv(self, path: str | Path, study: str | None = None) -> Path:
        """Write :meth:`flat_results` to CSV (list-valued columns as JSON text)."""
        self.flat_results(study).to_csv(path, index=False)
        return Path(path)

    def to_parquet(self, path: str | Path, study: str | None = None) -> Path:
        """Write :meth:`flat_results` to Parquet (list-valued columns as JSON text; needs ``pyarrow``:
        ``pip install overparam[parquet]``)."""
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:  # pragma: no cover
            raise ImportError("to_parquet needs pyarrow: pip install 'overparam[parquet]'") from exc
        self.flat_results(study).to_parquet(path, index=False)
        return Path(path)
