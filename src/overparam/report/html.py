"""One self-contained HTML page: per study its figures (embedded PNG), verdict table, parameters and run facts."""

from __future__ import annotations

import base64
import datetime as dt
import html
from dataclasses import dataclass, field
from typing import Any

from ..claims import Verdict

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em} td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top} th{background:#f4f4f4}
.pass{color:#0a7a28;font-weight:600} .fail{color:#b3141b;font-weight:600} .notjudged{color:#8a6d00;font-weight:600}
.deriv{color:#555;font-size:.85em;display:block;margin-top:.2em}
figure{display:inline-block;margin:.5em 0;text-align:center;max-width:100%} figure img{max-width:100%;border:1px solid #eee}
.summary{font-size:1.1em} .muted{color:#666;font-size:.9em}
"""


@dataclass
class StudySection:
    name: str
    claim: str
    verdicts: list[Verdict]
    figures: dict[str, bytes]  # name -> PNG bytes
    parameters: dict[str, list[Any]]  # parameter -> distinct values
    run: dict[str, Any] = field(default_factory=dict)  # scale, points, failed, wall_s, device
    errors: list[str] = field(default_factory=list)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _measured(v: Verdict) -> str:
    if v.standard_error == v.standard_error and v.standard_error > 0:  # finite, not NaN
        return f"{_fmt(v.measured)} ± {_fmt(v.standard_error)}"
    return _fmt(v.measured)


_STATUS = {"pass": ("pass", "pass"), "fail": ("fail", "FAIL"), "not judged": ("notjudged", "not judged")}
_SIGN = {"close": "±", "at_most": "≤ +", "at_least": "≥ −"}


def verdict_row(v: Verdict) -> str:
    """One table row: claim, measured ± standard error, predicted, tolerance (derivation below it), margin, n,
    status, detail."""
    cls, word = _STATUS.get(v.status, ("fail", v.status))
    tol = "0 (exact)" if v.tolerance == 0 else f"{_SIGN.get(v.comparison, '')}{_fmt(v.tolerance)}"
    return (f"<tr><td>{html.escape(v.claim)}</td><td>{_measured(v)}</td><td>{_fmt(v.predicted)}</td>"
            f"<td title='{html.escape(v.tolerance_derivation)}'>{tol}"
            f"<span class='deriv'>{html.escape(v.tolerance_derivation)}</span></td>"
            f"<td>{_fmt(v.margin)}</td><td>{v.n}</td><td class='{cls}'>{word}</td>"
            f"<td>{html.escape(v.detail)}</td></tr>")


def render(sections: list[StudySection], versions: dict[str, str], title: str = "overparam report") -> str:
    """The report page as a string."""
    n = sum(len(s.verdicts) for s in sections)
    counts = {k: sum(v.status == k for s in sections for v in s.verdicts) for k in _STATUS}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='summary'>{counts['pass']} pass, {counts['fail']} fail, {counts['not judged']} not judged"
             f" of {n} verdicts &middot; {len(sections)} studies &middot; code {_fmt(versions.get('commit', '?'))}"
             f" &middot; generated {dt.datetime.now().isoformat(timespec='seconds')}</p>"]
    for s in sections:
        parts.append(f"<h2 id='{html.escape(s.name)}'>{html.escape(s.name)}</h2><p>{html.escape(s.claim)}</p>")
        r = s.run
        if r:
            parts.append(f"<p class='muted'>scale {_fmt(r.get('scale'))} &middot; device {_fmt(r.get('device'))}"
                         f" &middot; {_fmt(r.get('n_points'))} points ({_fmt(r.get('n_failed', 0))} failed)"
                         f" &middot; compute {_fmt(r.get('compute_s', float('nan')))} s"
                         f" &middot; last sweep {_fmt(r.get('wall_s') or float('nan'))} s</p>")
        parts.append("<table><tr><th>claim</th><th>measured ± s.e.</th><th>predicted</th><th>tolerance</th>"
                     "<th>margin</th><th>n</th><th>verdict</th><th>detail</th></tr>")
        parts.extend(verdict_row(v) for v in s.verdicts)
        parts.append("</table>")
        for err in s.errors:
            parts.append(f"<pre class='fail'>{html.escape(err)}</pre>")
        for name, png in s.figures.items():
            b64 = base64.b64encode(png).decode()
            parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{html.escape(name)}</figcaption></figure>")
        if s.parameters:
            parts.append("<details><summary>parameters</summary><table><tr><th>parameter</th><th>values</th></tr>")
            for k, vals in s.parameters.items():
                shown = ", ".join(_fmt(v) for v in vals[:30]) + (" …" if len(vals) > 30 else "")
                parts.append(f"<tr><td>{html.escape(k)}</td><td>{shown}</td></tr>")
            parts.append("</table></details>")
    parts.append("<h2>versions</h2><table>")
    parts.extend(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in versions.items())
    parts.append("</table></body></html>")
    return "\n".join(parts)
