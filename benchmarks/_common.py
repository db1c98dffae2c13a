"""Shared by the benchmarks: machine facts and writing results as JSON + Markdown under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write(name: str, rows: list[dict], notes: str = "", folder: Path | str = RESULTS,
          measured_on: dict | None = None, date: str | None = None) -> Path:
    """Write ``results/NAME.json`` and ``results/NAME.md`` (a table of ``rows``), or under another ``folder``.
    ``measured_on`` and ``date``: the machine and date of the measurements when they were taken elsewhere (a table
    combined from runs on another machine), else this process's."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": date or time.strftime("%Y-%m-%d %H:%M:%S"),
               "machine": measured_on or machine(), "rows": rows, "notes": notes}
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2))
    cols = list(rows[0]) if rows else []
    md = [f"# {name}", "", f"{payload['date']} · {payload['machine']}", "", notes, "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:  # by the first row's columns: a row without one of them leaves its cell empty
        md.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                    for v in (r.get(c, "") for c in cols)) + " |")
    (folder / f"{name}.md").write_text("\n".join(md) + "\n")
    return folder / f"{name}.json"
