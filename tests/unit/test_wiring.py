"""Smoke tests of the wiring: every prefect.yaml entrypoint imports, schedules are valid, DDL applies."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_imports_and_schedule_parses(deployment):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    assert flow.name
    assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
    for schedule in deployment.get("schedules", []):
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])


def test_nightly_deployment_runs_at_two():
    nightly = next(d for d in DEPLOYMENTS if d["name"] == "nightly")
    assert nightly["schedules"][0]["cron"] == "0 2 * * *"


def test_ddl_applies_twice_to_an_empty_database():
    from warehouse.store import apply_ddl

    con = duckdb.connect()
    apply_ddl(con)
    apply_ddl(con)
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
    }
    assert {
        "fact_funding_line",
        "audit_source_file",
        "audit_validation_failure",
        "quarantine_row",
        "skipped_row",
    } <= tables
