"""One self-contained HTML page per training run: what was trained, how it scored, why it won.

Charts are embedded as base64 PNGs and the style is inline, so the file opens from the
artifact store, an e-mail or a CI artifact without anything else beside it. Every value that
came from data or configuration is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2328;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.muted{color:#656d76}.grid{display:flex;flex-wrap:wrap;gap:1rem}
.grid figure{margin:0}.grid img{max-width:500px;border:1px solid #d0d7de}
code,pre{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px;font-size:.85rem}
pre{padding:.6rem;overflow:auto}
"""


def render_report(
    *,
    title: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, float],
    evaluation_source: str,
    gates: Sequence[Mapping[str, Any]] = (),
    champion: Mapping[str, Any] | None = None,
    leaderboard: Sequence[Mapping[str, Any]] = (),
    slices: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    confusion: Sequence[Sequence[int]] | None = None,
    classes: Sequence[Any] | None = None,
    figures: Mapping[str, bytes] | None = None,
    lineage: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The report as one HTML string (see the module docstring)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _key_values(summary),
    ]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append(f"<h2>Metrics <span class='muted'>({_e(evaluation_source)})</span></h2>")
    parts.append(_metrics_table(metrics, champion))
    if gates:
        parts.append("<h2>Gates</h2>" + _gates_table(gates))
    if confusion is not None and classes is not None:
        parts.append("<h2>Confusion matrix</h2>" + _confusion_table(confusion, classes))
    if figures:
        parts.append("<h2>Charts</h2><div class='grid'>")
        for name, png in figures.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure><img alt='{_e(name)}' src='data:image/png;base64,{data}'>"
                f"<figcaption class='muted'>{_e(name)}</figcaption></figure>"
            )
        parts.append("</div>")
    if slices:
        for column, table in slices.items():
            parts.append(f"<h2>Metrics by {_e(column)}</h2>" + _slices_table(table))
    if leaderboard:
        parts.append("<h2>Search trials</h2>" + _leaderboard(leaderboard))
    if lineage:
        text = json.dumps(lineage, indent=2, default=str, sort_keys=True)
        parts.append(f"<h2>Lineage</h2><pre>{_e(text)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.6g}"
    return str(value)


def _key_values(values: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def _metrics_table(metrics: Mapping[str, float], champion: Mapping[str, Any] | None) -> str:
    theirs = (champion or {}).get("metrics") or {}
    head = "<tr><th>metric</th><th>this model</th>"
    if champion:
        head += f"<th>champion (v{_e(champion.get('version'))})</th><th>difference</th>"
    rows = [head + "</tr>"]
    for name, value in metrics.items():
        row = f"<tr><td>{_e(name)}</td><td class='num'>{_e(_fmt(value))}</td>"
        if champion:
            other = theirs.get(name)
            diff = value - other if isinstance(other, int | float) else None
            row += f"<td class='num'>{_e(_fmt(other))}</td><td class='num'>{_e(_fmt(diff))}</td>"
        rows.append(row + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _gates_table(gates: Sequence[Mapping[str, Any]]) -> str:
    rows = ["<tr><th>metric</th><th>rule</th><th>value</th><th>result</th></tr>"]
    for gate in gates:
        ok = bool(gate.get("passed"))
        verdict = "<span class='pass'>pass</span>" if ok else "<span class='fail'>FAIL</span>"
        rows.append(
            f"<tr><td>{_e(gate.get('metric'))}</td><td>{_e(gate.get('rule'))}</td>"
            f"<td class='num'>{_e(_fmt(gate.get('value')))}</td><td>{verdict}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _confusion_table(matrix: Sequence[Sequence[int]], classes: Sequence[Any]) -> str:
    head = "<tr><th>actual \\ predicted</th>" + "".join(f"<th>{_e(c)}</th>" for c in classes)
    rows = [head + "</tr>"]
    for label, counts in zip(classes, matrix, strict=False):
        cells = "".join(f"<td class='num'>{int(n)}</td>" for n in counts)
        rows.append(f"<tr><th>{_e(label)}</th>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _slices_table(table: Mapping[str, Mapping[str, float]]) -> str:
    names: list[str] = []
    for scores in table.values():
        names.extend(k for k in scores if k not in names)
    rows = ["<tr><th>value</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"]
    for value, scores in table.items():
        cells = "".join(f"<td class='num'>{_e(_fmt(scores.get(n)))}</td>" for n in names)
        rows.append(f"<tr><td>{_e(value)}</td>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _leaderboard(rows: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>rank</th><th>trial</th><th>candidate</th><th>state</th><th>score</th>"
        "<th>fit s</th><th>predict µs/row</th><th>size</th><th>params</th></tr>"
    )
    out = [head]
    for rank, row in enumerate(rows, start=1):
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in (row.get("params") or {}).items())
        state = row.get("state")
        if row.get("error"):
            state = f"{state}: {str(row['error'])[:120]}"
        out.append(
            f"<tr><td class='num'>{rank}</td><td class='num'>{_e(row.get('trial'))}</td>"
            f"<td>{_e(row.get('candidate'))}</td><td>{_e(state)}</td>"
            f"<td class='num'>{_e(_fmt(row.get('value')))}</td>"
            f"<td class='num'>{_e(_fmt(row.get('fit_seconds')))}</td>"
            f"<td class='num'>{_e(_fmt(row.get('predict_us_per_row')))}</td>"
            f"<td class='num'>{_e(_fmt(row.get('model_bytes')))}</td>"
            f"<td><code>{_e(params)}</code></td></tr>"
        )
    return "<table>" + "".join(out) + "</table>"
