"""Drift reports: one self-contained HTML page and the same content as JSON.

The page loads nothing: CSS, the SVG charts and the few lines of JavaScript that sort
the table are inline, so it opens offline by double-click. It shows a summary, a
sortable per-column table (method, score, threshold, verdict), overlaid reference and
current distributions for every column, and the change in missing values and outliers.
Everything is read from the two profiles and the drift result; no raw data is embedded
(Evidently's early reports embedded all rows and took minutes to open).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlkernel.monitor.drift import CHI_SQUARE_VARIANT, DatasetDrift, DriftOptions, compute_drift
from mlkernel.monitor.profile import ColumnProfile, DatasetProfile

__all__ = ["Report", "ReportChange", "build_report", "report_changes"]

_HIST_BINS = 30
_TOP_CATEGORIES = 20
_REF_COLOR = "#4c78a8"
_CUR_COLOR = "#f58518"


def _distribution(ref: ColumnProfile, cur: ColumnProfile) -> dict[str, Any] | None:
    """Shares of both samples on common bins (numeric) or categories."""
    if ref.n == 0 or cur.n == 0 or ref.kind != cur.kind:
        return None
    if ref.sketch is not None and cur.sketch is not None:
        lo = min(ref.sketch.min, cur.sketch.min)
        hi = max(ref.sketch.max, cur.sketch.max)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, _HIST_BINS + 1)
        readable = {}
        if ref.kind == "datetime":  # the axis as dates or times, not as their integers
            from mlkernel.monitor import temporal

            first, last = temporal.point(ref.dtype, lo), temporal.point(ref.dtype, hi)
            if first is not None and last is not None:
                readable["edge_labels"] = [first, last]
        return {
            "type": "histogram",
            "edges": edges.tolist(),
            **readable,
            "reference": (ref.sketch.histogram(edges) / ref.n).tolist(),
            "current": (cur.sketch.histogram(edges) / cur.n).tolist(),
        }
    if ref.kind != "categorical":
        return None
    combined = ref.frequent.merge(cur.frequent).top(_TOP_CATEGORIES)
    labels = [k for k, _ in combined]
    ref_shares = [ref.frequent.counts.get(k, 0) / ref.n for k in labels]
    cur_shares = [cur.frequent.counts.get(k, 0) / cur.n for k in labels]
    other_ref, other_cur = 1 - sum(ref_shares), 1 - sum(cur_shares)
    if other_ref > 1e-12 or other_cur > 1e-12:
        labels.append("(other)")
        ref_shares.append(max(other_ref, 0.0))
        cur_shares.append(max(other_cur, 0.0))
    return {
        "type": "categories",
        "labels": [str(k) for k in labels],
        "reference": ref_shares,
        "current": cur_shares,
    }


def _side(col: ColumnProfile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rows": col.count,
        "missing": col.missing,
        "missing_share": col.missing / col.count if col.count else 0.0,
    }
    outliers = col.outliers()
    if outliers is not None:
        out["outliers_iqr"] = outliers.iqr_count
        out["outliers_iqr_share"] = outliers.iqr_count / col.n if col.n else 0.0
        out["outliers_z"] = outliers.z_count
        out["outliers_z_share"] = outliers.z_count / col.n if col.n else 0.0
        out["outlier_examples"] = outliers.iqr_examples[:5]
        out["mean"] = col.mean
        out["std"] = None if math.isnan(col.std) else col.std
        if col.kind == "datetime":  # as people read them; the numbers stay for programs
            from mlkernel.monitor import temporal

            out["value_unit"] = temporal.unit(col.dtype)
            out["readable"] = {
                "mean": temporal.point(col.dtype, col.mean),
                "std": temporal.span(col.dtype, out["std"]),
                "outlier_examples": [temporal.point(col.dtype, v) for v in out["outlier_examples"]],
            }
    if col.kind == "categorical":
        out["categories_exact"] = col.frequent.is_exact
    return out


def _categories(ref: ColumnProfile, cur: ColumnProfile) -> dict[str, Any] | None:
    if ref.kind != "categorical" or cur.kind != "categorical":
        return None
    ref_keys, ref_exact = ref.categories()
    cur_keys, cur_exact = cur.categories()
    new = sorted(cur_keys - ref_keys) if ref_exact else []
    missing = sorted(ref_keys - cur_keys) if cur_exact else []
    return {
        "new": [str(k) for k in new[:50]],
        "new_count": len(new),
        "missing": [str(k) for k in missing[:50]],
        "missing_count": len(missing),
        "exact": ref_exact and cur_exact,
    }


@dataclass(frozen=True, slots=True)
class ReportChange:
    """One change a report shows besides the drift tests, as one line of text."""

    column: str | None  # None: the dataset as a whole
    what: (
        str  # new column | missing column | type | new missing values | missing values | categories
    )
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "what": self.what, "text": self.text}


def _changes(
    new_columns: list[str], missing_columns: list[str], columns: list[dict[str, Any]]
) -> list[ReportChange]:
    """Added and removed columns, changed shares of missing values, new and gone categories.

    The HTML page, the JSON document and ``mlk data drift`` all list these same lines.
    """
    out = [
        ReportChange(c, "new column", f"{c}: new column (only in the current version; not tested)")
        for c in new_columns
    ]
    out += [
        ReportChange(c, "missing column", f"{c}: missing column (only in the reference version)")
        for c in missing_columns
    ]
    for col in columns:
        name, ref, cur = col["column"], col["reference"], col["current"]
        changed = (col.get("drift") or {}).get("details", {}).get("type_changed")
        if changed:
            out.append(ReportChange(name, "type", f"{name}: type changed {changed}"))
        if ref["missing"] != cur["missing"] or ref["missing_share"] != cur["missing_share"]:
            what = "new missing values" if ref["missing"] == 0 else "missing values"
            out.append(
                ReportChange(
                    name,
                    what,
                    f"{name}: {what} {ref['missing']} ({ref['missing_share']:.2%}) → "
                    f"{cur['missing']} ({cur['missing_share']:.2%})",
                )
            )
        cats = col["categories"]
        if cats and (cats["new_count"] or cats["missing_count"]):
            out.append(
                ReportChange(
                    name,
                    "categories",
                    f"{name}: {cats['new_count']} new categories"
                    f"{' (' + ', '.join(cats['new'][:10]) + ')' if cats['new'] else ''}, "
                    f"{cats['missing_count']} missing categories"
                    f"{' (' + ', '.join(cats['missing'][:10]) + ')' if cats['missing'] else ''}",
                )
            )
    return out


def report_changes(document: dict[str, Any]) -> list[ReportChange]:
    """The changes listed in a report document (:meth:`Report.to_dict`)."""
    return [ReportChange(c["column"], c["what"], c["text"]) for c in document.get("changes", [])]


@dataclass
class Report:
    """A drift report between two profiles; render with :meth:`to_html` or :meth:`to_dict`."""

    reference: DatasetProfile
    current: DatasetProfile
    result: DatasetDrift
    title: str = "Data drift report"
    reference_name: str = "reference"
    current_name: str = "current"

    def to_dict(self) -> dict[str, Any]:
        drift_dict = self.result.to_dict()
        by_name = {c["column"]: c for c in drift_dict["columns"]}
        columns = []
        for name, ref in self.reference.columns.items():
            cur = self.current.columns.get(name)
            if cur is None:
                continue
            columns.append(
                {
                    "column": name,
                    "kind": ref.kind,
                    "drift": by_name.get(name),
                    "reference": _side(ref),
                    "current": _side(cur),
                    "categories": _categories(ref, cur),
                    "distribution": _distribution(ref, cur),
                }
            )
        changes = _changes(drift_dict["new_columns"], drift_dict["missing_columns"], columns)
        return {
            "format": "mlkernel.drift_report",
            "version": 1,
            "title": self.title,
            "reference": {"name": self.reference_name, "rows": self.reference.n_rows},
            "current": {"name": self.current_name, "rows": self.current.n_rows},
            "summary": {
                k: drift_dict[k]
                for k in (
                    "number_of_columns",
                    "number_of_drifted_columns",
                    "share_of_drifted_columns",
                    "drift_share",
                    "dataset_drift",
                    "correction",
                    "drifted_columns",
                    "new_columns",
                    "missing_columns",
                )
            },
            "conventions": {
                "chi_square": CHI_SQUARE_VARIANT,
                "jensen_shannon": "distance sqrt(JSD); log base named per column (natural log by default)",
                "wasserstein": "W1 / max(std_ddof0(reference), 0.001)",
                "psi": "sum((p - q) ln(p / q)) with Evidently's zero fill",
            },
            "columns": columns,
            "changes": [c.to_dict() for c in changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, indent=1)

    def to_html(self) -> str:
        return _render(self.to_dict())


def build_report(
    reference: DatasetProfile,
    current: DatasetProfile,
    result: DatasetDrift | None = None,
    *,
    options: DriftOptions | None = None,
    title: str = "Data drift report",
    reference_name: str = "reference",
    current_name: str = "current",
) -> Report:
    """A report for two profiles; computes the drift unless ``result`` is given."""
    return Report(
        reference=reference,
        current=current,
        result=result if result is not None else compute_drift(reference, current, options),
        title=title,
        reference_name=reference_name,
        current_name=current_name,
    )


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;margin-top:8px}
th,td{border-bottom:1px solid #e5e5e5;padding:4px 10px;text-align:left;font-size:14px}
th{cursor:pointer;background:#f6f6f6;user-select:none}
th:after{content:" \\2195";color:#aaa}
.drift{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.skip{color:#777}
.col{border-top:1px solid #ddd;padding-top:8px;margin-top:16px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.note{color:#555;font-size:13px}
"""

_JS = """
function sortTable(th){
  const table=th.closest('table'),tbody=table.tBodies[0],idx=[...th.parentNode.children].indexOf(th);
  const asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
  const rows=[...tbody.rows];
  rows.sort((a,b)=>{const x=a.cells[idx].dataset.v??a.cells[idx].textContent,
    y=b.cells[idx].dataset.v??b.cells[idx].textContent;const nx=parseFloat(x),ny=parseFloat(y);
    const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));return asc?c:-c;});
  rows.forEach(r=>tbody.appendChild(r));
}
document.querySelectorAll('th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{value:.0f}"
    return str(value)


def _stat(side: dict[str, Any], key: str) -> str:
    """A side's statistic, as a date, time or span for datetime columns."""
    text = (side.get("readable") or {}).get(key)
    return str(text) if text is not None else _fmt(side.get(key))


def _svg(dist: dict[str, Any] | None, ref_name: str, cur_name: str) -> str:
    if dist is None:
        return '<p class="note">no distribution to show</p>'
    width, height, pad = 560, 170, 28
    ref = dist["reference"]
    cur = dist["current"]
    top = max([*ref, *cur, 1e-12])
    n = len(ref)
    plot_w = width - 2 * pad
    slot = plot_w / max(n, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
        f'role="img" aria-label="distribution of {_e(ref_name)} and {_e(cur_name)}">',
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#999"/>',
    ]
    for i in range(n):
        x = pad + i * slot
        for share, color, offset, w in (
            (ref[i], _REF_COLOR, 0.0, slot if dist["type"] == "histogram" else slot / 2),
            (
                cur[i],
                _CUR_COLOR,
                0.0 if dist["type"] == "histogram" else slot / 2,
                slot if dist["type"] == "histogram" else slot / 2,
            ),
        ):
            h = (height - 10) * share / top
            parts.append(
                f'<rect x="{x + offset:.2f}" y="{height - h:.2f}" width="{max(w - 1, 0.5):.2f}" '
                f'height="{h:.2f}" fill="{color}" fill-opacity="0.55"><title>{_fmt(share)}</title></rect>'
            )
    if dist["type"] == "histogram":
        edges = dist.get("edge_labels") or [_fmt(dist["edges"][0]), _fmt(dist["edges"][-1])]
        parts.append(f'<text x="{pad}" y="{height + 16}" font-size="11">{_e(edges[0])}</text>')
        parts.append(
            f'<text x="{width - pad}" y="{height + 16}" font-size="11" text-anchor="end">{_e(edges[-1])}</text>'
        )
    else:
        for i, label in enumerate(dist["labels"]):
            x = pad + (i + 0.5) * slot
            short = label if len(label) <= 10 else label[:9] + "…"
            parts.append(
                f'<text x="{x:.1f}" y="{height + 14}" font-size="10" text-anchor="end" '
                f'transform="rotate(-35 {x:.1f} {height + 14})">{_e(short)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _verdict(d: dict[str, Any] | None) -> str:
    if d is None or d["skipped"]:
        return '<span class="skip">not tested</span>'
    return (
        '<span class="drift">drift</span>'
        if d["drift_detected"]
        else '<span class="ok">no drift</span>'
    )


def _render(data: dict[str, Any]) -> str:
    s = data["summary"]
    ref_name, cur_name = data["reference"]["name"], data["current"]["name"]
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(data['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(data['title'])}</h1>",
        f"<p>Reference <b>{_e(ref_name)}</b> ({data['reference']['rows']} rows) vs current "
        f"<b>{_e(cur_name)}</b> ({data['current']['rows']} rows).</p>",
        "<div class='cards' id='summary'>",
        f"<div class='card'>Dataset drift<b>{'yes' if s['dataset_drift'] else 'no'}</b></div>",
        f"<div class='card'>Columns tested<b>{s['number_of_columns']}</b></div>",
        f"<div class='card'>Drifted columns<b>{s['number_of_drifted_columns']}</b></div>",
        f"<div class='card'>Share drifted<b>{s['share_of_drifted_columns']:.2f}</b>"
        f"threshold {s['drift_share']:g}</div>",
        f"<div class='card'>Correction<b>{_e(s['correction'])}</b></div></div>",
    ]
    if s["new_columns"] or s["missing_columns"]:
        out.append(
            f"<p>New columns: {_e(', '.join(s['new_columns']) or 'none')}; "
            f"missing columns: {_e(', '.join(s['missing_columns']) or 'none')}.</p>"
        )
    if data.get("changes"):
        out.append("<h2>Changes</h2><ul id='changes'>")
        out.extend(f"<li>{_e(c['text'])}</li>" for c in data["changes"])
        out.append("</ul>")
    out.append("<h2>Columns</h2><table id='drift-table'><thead><tr>")
    out.extend(
        f"<th>{h}</th>"
        for h in (
            "column",
            "type",
            "test",
            "score",
            "threshold",
            "verdict",
            "missing ref → cur",
            "IQR outliers ref → cur",
        )
    )
    out.append("</tr></thead><tbody>")
    for col in data["columns"]:
        d = col["drift"]
        score = d["score"] if d else None
        ref, cur = col["reference"], col["current"]
        out.append(
            "<tr>"
            f"<td><a href='#col-{_e(col['column'])}'>{_e(col['column'])}</a></td>"
            f"<td>{_e(col['kind'])}</td>"
            f"<td>{_e(d['method_label'] if d else '—')}</td>"
            f"<td data-v='{_e(score if isinstance(score, float) else -1)}'>{_e(_fmt(score))}</td>"
            f"<td>{_e(_fmt(d['threshold'] if d else None))}</td>"
            f"<td data-v='{1 if d and d['drift_detected'] else 0}'>{_verdict(d)}</td>"
            f"<td data-v='{cur['missing_share'] - ref['missing_share']}'>"
            f"{ref['missing_share']:.2%} → {cur['missing_share']:.2%}</td>"
            f"<td>{_e(_fmt(ref.get('outliers_iqr_share')))} → {_e(_fmt(cur.get('outliers_iqr_share')))}</td>"
            "</tr>"
        )
    out.append("</tbody></table>")
    out.append(
        f"<p class='note'>Chi-square: {_e(CHI_SQUARE_VARIANT)}. Jensen-Shannon: the distance "
        "sqrt(JSD), natural log unless the column says otherwise. Wasserstein: W1 divided by the "
        "reference's std (ddof=0). p-value tests drift below their threshold, distances at or above it.</p>"
    )
    out.append(
        "<h2>Distributions</h2><p class='legend'>"
        f"<span style='background:{_REF_COLOR}'></span>{_e(ref_name)}"
        f"<span style='background:{_CUR_COLOR}'></span>{_e(cur_name)}</p>"
    )
    for col in data["columns"]:
        d = col["drift"]
        ref, cur = col["reference"], col["current"]
        out.append(
            f"<div class='col' id='col-{_e(col['column'])}'><h3>{_e(col['column'])} — {_verdict(d)}</h3>"
        )
        if d and not d["skipped"]:
            exact = "exact" if d["exact"] else "from sketches"
            out.append(
                f"<p>{_e(d['method_label'])}: {_e(_fmt(d['score']))} (threshold {_e(_fmt(d['threshold']))}, {exact})</p>"
            )
        elif d:
            out.append(f"<p class='note'>{_e(d['skipped'])}</p>")
        out.append(_svg(col["distribution"], ref_name, cur_name))
        out.append(
            f"<p>Missing values: {ref['missing']} ({ref['missing_share']:.2%}) → "
            f"{cur['missing']} ({cur['missing_share']:.2%}).</p>"
        )
        if "outliers_iqr" in ref or "outliers_iqr" in cur:  # a side may be text (type changed)
            out.append(
                f"<p>Outliers (IQR rule): {_fmt(ref.get('outliers_iqr'))} → {_fmt(cur.get('outliers_iqr'))}; "
                f"|z| &gt; 3: {_fmt(ref.get('outliers_z'))} → {_fmt(cur.get('outliers_z'))}. "
                f"Mean {_e(_stat(ref, 'mean'))} → {_e(_stat(cur, 'mean'))}, "
                f"std {_e(_stat(ref, 'std'))} → {_e(_stat(cur, 'std'))}.</p>"
            )
        cats = col["categories"]
        if cats and (cats["new_count"] or cats["missing_count"]):
            out.append(
                f"<p>New categories ({cats['new_count']}): {_e(', '.join(cats['new'][:10]))}; "
                f"missing categories ({cats['missing_count']}): {_e(', '.join(cats['missing'][:10]))}.</p>"
            )
        out.append("</div>")
    payload = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    out.append(f"<script type='application/json' id='report-data'>{payload}</script>")
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out)
