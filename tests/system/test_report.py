"""The HTML report (`dcf report`, flows/report.py): self-contained, its numbers are the marts' numbers, it draws in
a real browser (headless Chromium; skipped when none is installed), exit codes as a user sees them, and the Prefect
flow that publishes it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pytest

from flows.nightly import run_locally
from flows.report import publish_report
from warehouse.report import STAGE_PREFERENCE, TOP_RULES, YEAR_COLORS, ReportError, write_report
from warehouse.store import apply_ddl, exclusive_lock

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CHARTS = ("partners", "categories", "execution", "quality", "rules")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """What the tests look at in a report (or in Chromium's dump of its DOM): chart containers with their
    attributes and the SVG marks inside them, JSON data blocks, tables per section, every URL-bearing attribute."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.charts: dict[str, dict] = {}
        self.marks: dict[str, int] = {}
        self.svgs: dict[str, int] = {}
        self.json: dict[str, str] = {}
        self.tables: dict[str, int] = {}
        self.urls: list[tuple[str, str, str]] = []
        self.meta: list[dict] = []
        self._chart, self._depth, self._section, self._script = None, 0, None, None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name, value in attrs:
            if (
                name in ("src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "background")
                and value
            ):
                self.urls.append((tag, name, value))
        if tag == "meta":
            self.meta.append(a)
        if tag == "section":
            self._section = a.get("id")
        if tag == "table" and self._section:
            self.tables[self._section] = self.tables.get(self._section, 0) + 1
        if tag == "script" and a.get("type") == "application/json":
            self._script = a["id"]
            self.json[self._script] = ""
        if self._chart is not None:
            if tag == "rect" and "mark" in (a.get("class") or "").split():
                self.marks[self._chart] += 1
            if tag == "svg":
                self.svgs[self._chart] += 1
            if tag not in VOID:
                self._depth += 1
        elif "data-chart" in a:
            self._chart, self._depth = a["data-chart"], 1
            self.charts[self._chart] = a
            self.marks[self._chart] = self.svgs[self._chart] = 0

    def handle_startendtag(self, tag, attrs):
        if self._chart is not None and tag == "rect" and "mark" in (dict(attrs).get("class") or "").split():
            self.marks[self._chart] += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") and value:
                self.urls.append((tag, name, value))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None
        if self._chart is not None and tag not in VOID:
            self._depth -= 1
            if self._depth == 0:
                self._chart = None

    def handle_data(self, data):
        if self._script:
            self.json[self._script] += data

    def data(self, chart: str) -> dict:
        return json.loads(self.json[f"data-{chart}"])


@pytest.fixture(scope="module")
def warehouse(sample_warehouse) -> Path:
    return sample_warehouse  # read only (tests that load copy it first)


@pytest.fixture(scope="module")
def report(warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    write_report(warehouse, out)
    return out


@pytest.fixture(scope="module")
def con(warehouse):
    connection = duckdb.connect(str(warehouse), read_only=True)
    yield connection
    connection.close()


# -- content -----------------------------------------------------------------------------------------------------------
def test_every_chart_has_its_container_data_and_a_table(report):
    page = Page(report.read_text(encoding="utf-8"))
    assert set(page.charts) == set(CHARTS)
    for chart in CHARTS:
        assert page.charts[chart]["data-source"] == f"data-{chart}"
        assert page.data(chart)["rows"], chart
        assert page.tables.get(chart) == 1, f"{chart}: no table under the chart"
    assert any(m.get("charset", "").lower() == "utf-8" for m in page.meta)


def test_partner_chart_is_the_marts_numbers_for_one_stage(report, con):
    data = Page(report.read_text(encoding="utf-8")).data("partners")
    stage = data["stage"]
    # the stage most agencies report (ties: the one further along the money's way)
    reported = dict(
        con.execute("SELECT stage, count(DISTINCT agency_code) FROM mart_funding_by_agency GROUP BY 1").fetchall()
    )
    assert stage == min(reported, key=lambda s: (-reported[s], STAGE_PREFERENCE.index(s)))
    years = sorted({r["fiscal_year"] for r in data["rows"]})
    placeholders = ",".join("?" * len(years))
    iso3, name, name_ar, total, nominal = con.execute(
        f"SELECT partner_iso3, partner_name, partner_name_ar, sum({stage}_usd_constant) AS t, sum({stage}_usd) "
        f"FROM mart_funding_by_partner_year WHERE fiscal_year IN ({placeholders}) GROUP BY ALL ORDER BY t DESC LIMIT 1",
        years,
    ).fetchone()
    first = data["rows"][0]
    assert (first["key"], first["name"], first["name_ar"]) == (iso3, name, name_ar)
    assert first["total_usd_constant"] == pytest.approx(total, rel=1e-9)
    assert first["total_usd"] == pytest.approx(nominal, rel=1e-9)
    per_year = dict(
        con.execute(
            f"SELECT fiscal_year, {stage}_usd_constant FROM mart_funding_by_partner_year WHERE partner_iso3 = ?", [iso3]
        ).fetchall()
    )
    for row in (r for r in data["rows"] if r["key"] == iso3):
        assert row["usd_constant"] == pytest.approx(per_year.get(row["fiscal_year"], 0), rel=1e-9, abs=1e-6)
    assert len({r["key"] for r in data["rows"]}) == 10


def test_category_execution_quality_and_rules_match_the_marts(report, con):
    page = Page(report.read_text(encoding="utf-8"))
    categories = page.data("categories")
    stage, years = categories["stage"], sorted({r["fiscal_year"] for r in categories["rows"]})
    stage_total = con.execute(
        f"SELECT sum(amount_usd) FROM mart_funding_by_agency WHERE stage = ? AND fiscal_year IN ({','.join('?' * len(years))})",
        [stage, *years],
    ).fetchone()[0]
    assert sum(r["usd"] for r in categories["rows"]) == pytest.approx(stage_total, rel=1e-9)  # every category shown

    execution = {(r["agency_code"], r["fiscal_year"]): r for r in page.data("execution")["rows"]}
    mart = con.execute(
        "SELECT agency_code, fiscal_year, sum(allocated_usd), sum(committed_usd), sum(disbursed_usd) "
        "FROM mart_budget_execution GROUP BY ALL"
    ).fetchall()
    assert len(mart) == len(execution)
    for agency, year, allocated, committed, disbursed in mart:
        row = execution[(agency, year)]
        for key, value in (("allocated_usd", allocated), ("committed_usd", committed), ("disbursed_usd", disbursed)):
            assert row[key] == (None if value is None else pytest.approx(value, rel=1e-9)), (agency, year, key)
        if allocated and committed is not None:
            assert row["commitment_rate"] == pytest.approx(committed / allocated, rel=1e-9)
        assert row["in_chart"] == (allocated is not None and (committed is not None or disbursed is not None))

    quality = {r["agency_code"]: r for r in page.data("quality")["rows"]}
    cols = ["rows_read", "rows_loaded", "rows_quarantined", "rows_skipped", "open_blocking"]
    for agency, *counts in con.execute(f"SELECT agency_code, {', '.join(cols)} FROM mart_data_quality").fetchall():
        assert [quality[agency][c] for c in cols] == counts

    rules = {r["rule"]: r["failures"] for r in page.data("rules")["rows"]}
    counts = con.execute("SELECT rule, count(*) AS n FROM open_failures GROUP BY rule ORDER BY n DESC, rule").fetchall()
    assert len(counts) > TOP_RULES  # the sample's rules outnumber the table: it shows the most frequent ones
    assert rules == dict(counts[:TOP_RULES])
    load_id = con.execute("SELECT load_id FROM audit_load ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    assert load_id in report.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    page = Page(text)
    external = [u for u in page.urls if not u[2].startswith(("#", "data:"))]
    assert external == []
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<link\b|@import|url\(|<script[^>]+\bsrc=|<iframe|<img|<object|<embed", text, re.I)
    csp = next(m["content"] for m in page.meta if m.get("http-equiv", "").lower() == "content-security-policy")
    assert "default-src 'none'" in csp


def test_hostile_names_are_escaped_in_html_and_json(warehouse, con, tmp_path):
    top = con.execute(
        "SELECT partner_iso3 FROM mart_funding_by_partner_year GROUP BY 1 "
        "ORDER BY sum(committed_usd_constant) DESC LIMIT 1"
    ).fetchone()[0]
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, copy)
    hostile = '</script><script>alert(1)</script><!-- & "x" \u0645\u0635\u0631'
    with duckdb.connect(str(copy)) as rw:
        rw.execute("UPDATE dim_country SET name_en = ? WHERE iso3 = ?", [hostile, top])
    out = tmp_path / "hostile.html"
    write_report(copy, out, stage="committed")
    text = out.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text and "</script><script>" not in text
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!-- &amp; &quot;x&quot;" in text  # the table cell
    assert Page(text).data("partners")["rows"][0]["name"] == hostile  # the JSON gives the same text back


def test_report_reads_while_an_ingestion_holds_the_warehouse(warehouse, tmp_path):
    with exclusive_lock(warehouse):  # what a running load holds while it builds its staging copy
        info = write_report(warehouse, tmp_path / "during-load.html")
    assert info.path.stat().st_size > 10_000


def test_empty_or_foreign_warehouse_is_a_report_error(tmp_path):
    empty = tmp_path / "empty.duckdb"
    with duckdb.connect(str(empty)) as c:
        apply_ddl(c)
    with pytest.raises(ReportError, match="empty"):
        write_report(empty, tmp_path / "r.html")
    foreign = tmp_path / "foreign.duckdb"
    duckdb.connect(str(foreign)).close()
    with pytest.raises(ReportError, match="not a dcf warehouse"):
        write_report(foreign, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# -- in a real browser -------------------------------------------------------------------------------------------------
def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium or Chrome on PATH (chromium, chromium-browser, google-chrome): the rendering check needs "
        "one; on Debian: apt-get install chromium (.ci/run does it as root)"
    )


def headless(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000",
        *args,
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def png_rgb(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB(A) PNG (what Chromium writes) to a height x width x 3 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (2, 6), header
    bpp, stride = (3 if color == 2 else 4), width * (3 if color == 2 else 4)
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out, prev = np.empty((height, stride), dtype=np.uint8), np.zeros(stride, dtype=np.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum per channel
            cur = line.reshape(width, bpp).cumsum(axis=0).reshape(-1) & 255
        elif kind == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average, Paeth: byte by byte
            done, up, lin = [0] * stride, prev.tolist(), line.tolist()
            for i in range(stride):
                a, b = (done[i - bpp] if i >= bpp else 0), up[i]
                if kind == 3:
                    done[i] = (lin[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    done[i] = (lin[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.array(done, dtype=np.int64)
        out[y], prev = cur, cur
    return out.reshape(height, width, bpp)[:, :, :3]


def test_charts_draw_in_headless_chromium(report, tmp_path):
    dom = headless(tmp_path, report, "--dump-dom").stdout
    page = Page(dom)
    assert set(page.charts) == set(CHARTS), dom[:2000]
    for chart in CHARTS:
        attrs = page.charts[chart]
        assert "data-error" not in attrs, attrs["data-error"]
        assert int(attrs.get("data-drawn", "0")) > 0, f"{chart} did not draw"
        assert page.svgs[chart] == 1 and page.marks[chart] == int(attrs["data-drawn"]), chart
    # one mark per non-zero value: the partner chart has a bar for each partner-year with funding at the stage
    rows = Page(report.read_text(encoding="utf-8")).data("partners")["rows"]
    assert page.marks["partners"] == sum(1 for r in rows if r["usd_constant"])


def test_screenshot_shows_the_charts(report, tmp_path):
    shot = tmp_path / "report.png"
    headless(tmp_path, report, "--hide-scrollbars", "--window-size=1100,1000", f"--screenshot={shot}")
    pixels = png_rgb(shot.read_bytes())
    assert pixels.shape == (1000, 1100, 3)
    white = (pixels.min(axis=2) >= 250).mean()
    assert 0.3 < white < 0.97, f"{white:.0%} of the page is white"
    colours = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in YEAR_COLORS[-2:]}  # the partner chart's years
    flat = pixels.reshape(-1, 3)
    for colour in colours:
        assert (flat == colour).all(axis=1).sum() > 2_000, f"too few bar pixels of colour {colour}"


# -- the command line and the flow --------------------------------------------------------------------------------------
def dcf(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dcf.cli", *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )


def test_dcf_report_exit_codes(warehouse, tmp_path):
    out = tmp_path / "nested" / "report.html"
    ok = dcf("report", "--out", str(out), "--warehouse", str(warehouse))
    assert ok.returncode == 0, ok.stderr
    assert out.is_file() and "report written to" in ok.stdout and "Traceback" not in ok.stdout + ok.stderr

    missing = dcf("report", "--out", str(tmp_path / "m.html"), "--warehouse", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no warehouse at" in missing.stderr
    assert "Traceback" not in missing.stdout + missing.stderr and not (tmp_path / "m.html").exists()

    empty = tmp_path / "empty.duckdb"
    with duckdb.connect(str(empty)) as c:
        apply_ddl(c)
    result = dcf("report", "--out", str(tmp_path / "e.html"), "--warehouse", str(empty))
    assert result.returncode == 2 and "empty" in result.stderr and "Traceback" not in result.stderr

    bad_stage = dcf("report", "--out", str(tmp_path / "s.html"), "--warehouse", str(warehouse), "--stage", "paid")
    assert bad_stage.returncode == 2 and "unknown stage" in bad_stage.stderr


def test_publish_report_flow_writes_the_report_latest_and_an_artifact(warehouse):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    info = run_locally(publish_report, warehouse=str(warehouse))
    expected = warehouse.parent / "reports" / f"report-{date.today().isoformat()}.html"
    assert info.path == expected.resolve() and expected.is_file()
    latest = expected.with_name("latest.html")
    assert latest.read_bytes() == expected.read_bytes()
    assert set(Page(expected.read_text(encoding="utf-8")).charts) == set(CHARTS)

    async def newest():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["warehouse-report"]))
            )
            return sorted(found, key=lambda a: a.created)[-1]

    markdown = asyncio.run(newest()).data
    assert info.load_id in markdown and str(expected) in markdown and "latest.html" in markdown
