"""The data-quality report of a version: one self-contained HTML page with inline SVG charts.

Charts are drawn as SVG by hand (bars of the stored histograms and top-k counts), so the page
needs no JavaScript, no network and no plotting library at ingestion time.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.data.validate import ValidationReport

__all__ = ["render_report", "svg_bars"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:right;font-size:.9rem}th{background:#f4f4f4}td.l,th.l{text-align:left}
.ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}.cols{display:flex;flex-wrap:wrap;gap:1rem}
.col{border:1px solid #e0e0e0;border-radius:6px;padding:.5rem 1rem;width:20rem}
.col h3{font-size:1rem;margin:.2rem 0}.muted{color:#777;font-size:.85rem}
"""


def svg_bars(
    counts: list[int], labels: list[str] | None = None, *, width: int = 300, height: int = 90
) -> str:
    """A small bar chart as an inline SVG element."""
    if not counts:
        return ""
    top = max(counts) or 1
    bar = width / len(counts)
    rects = []
    for i, c in enumerate(counts):
        h = (c / top) * (height - 12)
        title = escape(f"{labels[i]}: {c}" if labels else str(c))
        rects.append(
            f'<rect x="{i * bar:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="#4c78a8"><title>{title}</title></rect>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img">{"".join(rects)}</svg>'
    )


def render_report(
    *,
    name: str,
    version: int | None,
    profile: dict[str, Any],
    summary: dict[str, Any],
    validation: ValidationReport | None,
    source: str,
) -> str:
    title = f"{name}@{version}" if version is not None else name
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Data quality: {escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Data quality report: {escape(title)}</h1>",
        f"<p class='muted'>{escape(source)}</p>",
        "<h2>Ingestion</h2><table>",
        "<tr><th>rows in</th><th>kept</th><th>quarantined</th><th>values changed</th></tr>",
        f"<tr><td>{summary.get('rows_in', 0)}</td><td>{summary.get('rows', 0)}</td>"
        f"<td>{summary.get('quarantined', 0)}</td>"
        f"<td>{sum((summary.get('changed') or {}).values())}</td></tr></table>",
    ]
    reasons = summary.get("reasons") or {}
    if reasons:
        parts.append(
            "<h2>Quarantine reasons</h2><table><tr><th class='l'>reason</th><th>rows</th></tr>"
        )
        parts += [
            f"<tr><td class='l'>{escape(str(r))}</td><td>{n}</td></tr>"
            for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])
        ]
        parts.append("</table>")
        parts.append(svg_bars(list(reasons.values()), list(reasons.keys())))
    if validation is not None:
        state = (
            "<span class='ok'>passed</span>"
            if validation.passed
            else "<span class='bad'>failed</span>"
        )
        parts.append(f"<h2>Contract checks ({len(validation.results)} rules): {state}</h2>")
        if validation.schema:
            parts.append(
                "<ul>"
                + "".join(f"<li class='bad'>{escape(s.describe())}</li>" for s in validation.schema)
                + "</ul>"
            )
        parts.append(
            "<table><tr><th class='l'>rule</th><th>violations</th><th class='l'>examples</th></tr>"
        )
        for r in validation.results:
            css = "ok" if r.passed else "bad"
            examples = escape("; ".join(str(e) for e in r.examples[:3]))
            parts.append(
                f"<tr><td class='l'>{escape(r.rule)}</td><td class='{css}'>{r.violations}</td>"
                f"<td class='l'>{examples}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        f"<h2>Columns ({len(profile.get('columns', {}))}, {profile.get('rows', 0)} rows)</h2>"
    )
    parts.append("<div class='cols'>")
    for column, stats in profile.get("columns", {}).items():
        parts.append(f"<div class='col'><h3>{escape(column)}</h3>")
        parts.append(
            f"<div class='muted'>{escape(str(stats.get('type')))} · "
            f"{stats.get('nulls', 0)} nulls</div>"
        )
        if "histogram" in stats:
            hist = stats["histogram"]
            edges = hist["edges"]
            labels = [f"{edges[i]:.4g}…{edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
            parts.append(svg_bars(hist["counts"], labels))
            parts.append(
                "<table><tr><th>min</th><th>mean</th><th>max</th><th>std</th></tr><tr>"
                + "".join(f"<td>{stats.get(k, 0):.4g}</td>" for k in ("min", "mean", "max", "std"))
                + "</tr></table>"
            )
        elif "top" in stats:
            top = stats["top"][:10]
            parts.append(svg_bars([t["count"] for t in top], [str(t["value"]) for t in top]))
            parts.append(
                "<table>"
                + "".join(
                    f"<tr><td class='l'>{escape(str(t['value']))}</td><td>{t['count']}</td></tr>"
                    for t in top[:5]
                )
                + "</table>"
            )
        elif "min" in stats:
            parts.append(f"<div>{escape(str(stats['min']))} … {escape(str(stats['max']))}</div>")
        parts.append("</div>")
    parts.append("</div></body></html>")
    return "\n".join(parts)
