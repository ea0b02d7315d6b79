"""The HTML report (warehouse/report.py), its building blocks: escaping, chart data embedded as JSON, amounts in
words, tables and chart sections. Every value from the warehouse goes through ``esc`` (or the JSON escaping)."""

from __future__ import annotations

import html
import json

import pandas as pd


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def json_script(element_id: str, payload: dict) -> str:
    """Data for the page's script. ``<``, ``>`` and ``&`` are written as JSON escapes, so no value can end the
    script element or open a comment, whatever the data holds."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows for JSON: NaN/NaT -> null, numpy scalars -> Python, timestamps -> ISO text."""
    clean = frame.copy()
    for col in clean.columns:
        if pd.api.types.is_datetime64_any_dtype(clean[col]):
            clean[col] = clean[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return json.loads(clean.to_json(orient="records", double_precision=15, force_ascii=False))


def usd_text(value: float | None, constant_year=None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    unit = f"constant {constant_year} US$" if constant_year else "US$"
    a = abs(value)
    text = f"{value / 1e9:,.2f} bn" if a >= 1e9 else f"{value / 1e6:,.1f} m" if a >= 1e6 else f"{value:,.0f}"
    return f"{unit} {text}"


_FORMATS = {
    "usd_m": lambda s: (s.astype("float64") / 1e6).map("{:,.1f}".format),
    "int": lambda s: s.astype("float64").map("{:,.0f}".format),
    "pct": lambda s: (s.astype("float64") * 100).map("{:.1f} %".format),
    "year": lambda s: s.astype("Int64").astype("string"),
    "text": lambda s: s.astype("string"),
    "ar": lambda s: s.astype("string"),
}


def html_table(frame: pd.DataFrame, columns: list[tuple[str, str, str]], caption: str, blank: str = "\u2014") -> str:
    """An HTML table; ``columns`` are (frame column, header, kind) with kind usd_m, int, pct, year, text or ar
    (Arabic: right to left). Missing values show ``blank``; every cell is escaped."""
    head = "".join(
        f'<th scope="col" class="{"num" if kind in ("usd_m", "int", "pct") else kind}">{esc(h)}</th>'
        for _, h, kind in columns
    )
    cells: list[pd.Series] = []
    for col, _, kind in columns:
        s = frame[col]
        shown = _FORMATS[kind](s).where(s.notna(), blank).map(esc)
        attrs = {
            "usd_m": ' class="num"',
            "int": ' class="num"',
            "pct": ' class="num"',
            "ar": ' lang="ar" dir="rtl"',
        }.get(kind, "")
        tag = 'th scope="row"' if not cells else "td"
        end = "th" if not cells else "td"
        cells.append(("<" + tag + attrs + ">") + shown + f"</{end}>")
    body = (
        "".join("<tr>" + "".join(row) + "</tr>\n" for row in zip(*cells))
        if len(frame)
        else (f'<tr><td colspan="{len(columns)}">no rows</td></tr>')
    )
    return (
        f'<div class="table-wrap"><table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}</tbody></table></div>"
    )


def year_table(frame: pd.DataFrame, first: str, base_year) -> str:
    """The partner (or category) grid as a wide table: one row per partner, one column per fiscal year."""
    if frame.empty:
        return html_table(frame, [("name", first, "text")], "No data for this stage.")
    wide = frame.pivot_table(
        index=["rank", "name"], columns="fiscal_year", values="usd_constant", aggfunc="sum", sort=True
    ).reset_index()
    years = [c for c in wide.columns if c not in ("rank", "name")]
    wide.columns = ["rank", "name", *[f"fy{y}" for y in years]]
    totals = frame.drop_duplicates("rank")[["rank", "name_ar", "total_usd_constant", "total_usd"]]
    wide = wide.merge(totals, on="rank").sort_values("rank")
    cols = [
        ("name", first, "text"),
        ("name_ar", "Arabic name", "ar"),
        *[(f"fy{y}", f"FY{y}", "usd_m") for y in years],
        ("total_usd_constant", "Total, constant", "usd_m"),
        ("total_usd", "Total, nominal", "usd_m"),
    ]
    return html_table(
        wide, cols, f"Million US$ (fiscal years and total: constant {base_year} US$; last column nominal)."
    )


def chart_section(chart_id: str, title: str, caption: str, payload: dict, table: str, alt: str) -> str:
    return (
        f'<section id="{chart_id}">\n<h2 id="h-{chart_id}">{esc(title)}</h2>\n<p class="caption">{esc(caption)}</p>\n'
        f'<div class="chart" id="chart-{chart_id}" data-chart="{chart_id}" data-source="data-{chart_id}" role="img" '
        f'aria-label="{esc(alt)}"></div>\n{json_script("data-" + chart_id, payload)}\n{table}\n</section>\n'
    )
