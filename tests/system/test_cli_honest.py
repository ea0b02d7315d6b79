"""A quiet, honest command line (issue 14) on the sample warehouse: the warehouse's own views and the README's queries
work inside ``dcf sql``'s sandbox, the listing commands print CSV and JSON that match the warehouse, valid filter
values keep working, and ``dcf run`` / ``dcf status`` warn about inbox folders no source reads.
(The sandbox's refusals and the rendering of each type: tests/unit/test_cli_output.py.)"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from dcf.cli import app

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
README_SQL = re.findall(r"^```sql\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)


def dcf_process(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """dcf as its own process (a connection with the sandbox's settings never meets this process's own)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dcf.cli", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def dcf(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def test_views_and_readme_queries_work_with_external_access_off(sample_warehouse):
    views = [
        v for (v,) in query(sample_warehouse, "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")
    ]
    assert "mapping_queue" in views and any(v.startswith("mart_") for v in views)
    script = "; ".join(f"SELECT '{v}' AS view, count(*) AS n FROM (FROM \"{v}\")" for v in views)
    counted = dcf_process("sql", script, "--format", "json", "--warehouse", str(sample_warehouse))
    assert counted.returncode == 0, counted.stderr
    results = [json.loads(line) for line in counted.stdout.splitlines()]
    assert [r[0]["view"] for r in results] == views  # every view answered, one result set each
    assert all(r[0]["n"] == query(sample_warehouse, f'SELECT count(*) FROM "{r[0]["view"]}"')[0][0] for r in results)

    readme = dcf_process("sql", "\n".join(README_SQL), "--format", "json", "--warehouse", str(sample_warehouse))
    assert readme.returncode == 0, readme.stderr
    assert len(readme.stdout.splitlines()) == len(README_SQL) >= 5


def test_listing_commands_print_csv_and_json(sample_warehouse):
    wh = str(sample_warehouse)
    files = query(sample_warehouse, "SELECT file_key, rows_loaded FROM audit_source_file WHERE is_current ORDER BY 1")
    n_open = query(sample_warehouse, "SELECT count(*) FROM audit_validation_failure WHERE status = 'open'")[0][0]

    table = dcf("status", "--warehouse", wh)
    assert table.exit_code == 0 and "recent loads" in table.stdout and "current files" in table.stdout
    status = json.loads(dcf("status", "--warehouse", wh, "--format", "json").stdout)
    assert [(f["file"], f["loaded"]) for f in status["current_files"]] == files
    assert status["open_failures"] == n_open and status["recent_loads"][0]["outcome"] == "success"
    assert status["analyst_edition"] is None and "analyst edition" not in table.stdout  # no agency is restricted
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", status["recent_loads"][0]["started"])
    datasets = query(sample_warehouse, "SELECT dataset, rows_loaded FROM dataset_summary ORDER BY 1")
    assert {"transfer_register", "sipri_milex"} <= {d for d, _ in datasets}  # the sample register and reference
    assert [(d["dataset"], d["loaded"]) for d in status["datasets"]] == datasets
    assert "named datasets" in table.stdout
    loads_csv, files_csv, datasets_csv, refused_csv = dcf("status", "--warehouse", wh, "--format", "csv").stdout.split(
        "\n\n"
    )
    assert refused_csv.strip() == "entry,reason"  # the sample inbox has no entry to refuse: the header alone
    assert [(r["file"], int(r["loaded"])) for r in csv.DictReader(io.StringIO(files_csv))] == files
    assert [(r["dataset"], int(r["loaded"])) for r in csv.DictReader(io.StringIO(datasets_csv))] == datasets
    assert next(csv.DictReader(io.StringIO(loads_csv)))["outcome"] == "success"

    listed = json.loads(dcf("failures", "--warehouse", wh, "--format", "json", "--limit", "100000").stdout)
    assert len(listed) == n_open and {"file", "row", "cell", "value", "message", "rule"} <= set(listed[0])
    as_csv = list(
        csv.DictReader(io.StringIO(dcf("failures", "--warehouse", wh, "--format", "csv", "--limit", "5").stdout))
    )
    assert len(as_csv) == 5
    summary = json.loads(dcf("failures", "--summary", "--warehouse", wh, "--format", "json").stdout)
    assert sum(r["failures"] for r in summary) == n_open

    waiting = query(sample_warehouse, "SELECT count(*) FROM mapping_queue")[0][0]
    unmapped = json.loads(dcf("unmapped", "--warehouse", wh, "--format", "json").stdout)
    assert len(unmapped) == waiting > 0 and {"kind", "agency", "label", "rows", "fix_in"} <= set(unmapped[0])
    unmapped_csv = list(csv.DictReader(io.StringIO(dcf("unmapped", "--warehouse", wh, "--format", "csv").stdout)))
    assert len(unmapped_csv) == waiting

    versions = json.loads(dcf("rollback", "--list", "--warehouse", wh, "--format", "json").stdout)
    assert versions and versions[0]["state"] == "published" and isinstance(versions[0]["version"], int)


def test_valid_filter_values_keep_working(sample_warehouse, tmp_path):
    wh = str(sample_warehouse)
    mod = dcf("failures", "--agency", "mod", "--rule", "country_unknown", "--format", "json", "--warehouse", wh)
    assert mod.exit_code == 0, mod.output
    rows = json.loads(mod.stdout)
    assert rows and all(r["file"].startswith("MOD/") and r["rule"] == "country_unknown" for r in rows)
    assert dcf("failures", "--agency", "SANG", "--status", "all", "--warehouse", wh).exit_code == 0
    countries = json.loads(dcf("unmapped", "--kind", "country", "--format", "json", "--warehouse", wh).stdout)
    assert countries and {r["kind"] for r in countries} == {"country"}
    stage = dcf("report", "--stage", "Committed", "--out", str(tmp_path / "r.html"), "--warehouse", wh)
    assert stage.exit_code == 0 and "stage shown: committed" in stage.stdout, stage.output


def test_inbox_guard_warns_in_the_run_and_in_status(sample_inbox, tmp_path):
    source, _ = sample_inbox
    inbox = tmp_path / "inbox"
    shutil.copytree(source / "gami", inbox / "gami")
    shutil.copytree(source / "mod", inbox / "MOD")  # the source says inbox_dir: mod
    (inbox / "misc").mkdir()
    wh = tmp_path / "warehouse.duckdb"

    night = dcf_process("run", "--inbox", str(inbox), "--warehouse", str(wh))
    assert night.returncode == 0, night.stderr[-3000:]
    assert "Traceback" not in night.stdout + night.stderr
    warnings = [line for line in night.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, night.stdout
    assert f"{inbox / 'MOD'} is not read" in warnings[0] and str(inbox / "mod") in warnings[0]
    assert f"{inbox / 'misc'} matches no source" in warnings[1] and "mod/" in warnings[1]
    assert f"{inbox / 'MOD'} is not read" in night.stderr  # the run log says it too
    assert all(k.startswith("GAMI/") for (k,) in query(wh, "SELECT file_key FROM audit_source_file"))

    status = dcf("status", "--warehouse", str(wh))  # the inbox the last load read
    assert status.exit_code == 0 and f"warning: inbox folder {inbox / 'MOD'} is not read" in status.stderr

    deep = dcf_process("run", "--inbox", str(inbox / "gami"), "--warehouse", str(wh))  # one level too deep
    assert deep.returncode == 0, deep.stderr[-3000:]  # a night that loads nothing, as before
    assert "0 file(s) processed" in deep.stdout and "Traceback" not in deep.stdout + deep.stderr
    (too_deep,) = [line for line in deep.stdout.splitlines() if line.startswith("warning:")]
    assert "one level too deep" in too_deep and str(inbox) in too_deep
    assert query(wh, "SELECT count(*) FROM audit_source_file WHERE withdrawn_at IS NOT NULL")[0][0] == 0


LISTING = [
    ["status"],
    ["failures"],
    ["failures", "--agency", "MOD", "--rule", "country_unknown", "--summary"],
    ["unmapped", "--kind", "country"],
    ["sql", "SELECT count(*) FROM funding_lines"],
    ["rollback", "--list"],
    ["--help"],
    ["failures", "--help"],
]


@pytest.mark.parametrize("args", LISTING, ids=" ".join)
def test_commands_that_run_no_flow_import_neither_prefect_nor_pandas(args, sample_warehouse):
    """What keeps them under a second on a busy machine (importing pandas alone takes seconds there; building the
    source YAMLs' pydantic models, schemas.sources, takes longer than status's queries): checked by the modules
    loaded, never by a clock."""
    probe = (
        "import sys\n"
        "from dcf.cli import main\n"
        f"sys.argv = ['dcf', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
        "heavy = sorted(m for m in ('prefect', 'pandas', 'numpy', 'pyarrow', 'openpyxl', 'schemas.sources') "
        "if m in sys.modules)\n"
        "print('HEAVY', code, ','.join(heavy), file=sys.stderr)\n"
    )
    env = {**os.environ, "DCF_WAREHOUSE": str(sample_warehouse), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY")]
    assert line.split(" ", 2)[1] in ("0", "None"), done.stdout + done.stderr
    assert line.split(" ", 2)[2:] in ([], [""]), line
