"""One data sheet of a years-across-columns workbook -> long rows (for ``transforms/wide.py``): entity, heading,
blank and orphan rows told apart, region context carried down, entity x year cells melted with their status and
footnote marks, countries mapped, and a failure record per invalid value, unknown country or unnamed row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from schemas.rules import severity as rule_severity
from schemas.sources import WIDE_ATTRIBUTES, WideFileSpec, WideSheetSpec
from transforms.countries import map_countries, suggest
from transforms.text import STR, as_text, fold_key
from transforms.wide_layout import (
    Grid,
    SheetLayoutError,
    WideResult,
    _attribute_columns,
    _norm,
    _preamble_text,
    _text_cells,
    _value_columns,
    column_letters,
    locate_header,
)

FOOTNOTE_NUMBERS = re.compile(r"\d+")


def split_footnote_marks(notes: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'‡§¶16' -> symbols '‡§¶', numbers [16]. Vectorised over the distinct notes."""
    text = as_text(notes)
    symbols = text.str.replace(r"[\d\s,;]+", "", regex=True)
    symbols = symbols.mask(symbols == "")
    numbers = text.map(
        lambda s: [int(n) for n in FOOTNOTE_NUMBERS.findall(s)] if isinstance(s, str) else None, na_action="ignore"
    )
    return symbols, numbers


def _failure_frame(
    sheet: str,
    rows: np.ndarray,
    cells,
    column,
    value,
    rule: str,
    severity: Mapping[str, str],
    message,
    suggestion=pd.NA,
) -> pd.DataFrame:
    """Failure records of one rule for the given Excel rows (columns as transforms.failures, plus sheet and cell)."""
    return pd.DataFrame(
        {
            "sheet": sheet,
            "excel_row": np.asarray(rows).astype("int64"),
            "cell": np.asarray(cells, dtype=object),
            "column": column,
            "value": value,
            "rule": rule,
            "severity": severity.get(rule, rule_severity(rule)),
            "message": message,
            "suggestion": suggestion,
        }
    )


def _entity_cells(entity_col: int, rows: np.ndarray) -> np.ndarray:
    """A1 addresses of the entity-name cells on the given Excel rows."""
    return column_letters(np.full(len(rows), entity_col)).astype(object) + np.asarray(rows).astype(str).astype(object)


def standardise_sheet(
    grid: Grid,
    spec: WideSheetSpec,
    file_spec: WideFileSpec,
    captured: dict[str, str],
    country_lookup: pd.DataFrame,
    severity: Mapping[str, str],
) -> WideResult:
    header_pos, entity_col = locate_header(grid, spec)
    pre = _preamble_text(grid, header_pos)
    captured = dict(captured)
    if spec.preamble:
        m = re.search(spec.preamble, pre, re.IGNORECASE)
        if m:
            captured.update({k: v for k, v in m.groupdict().items() if v is not None})
    header = grid.cells.iloc[header_pos]
    vcols = _value_columns(header, spec, captured)
    if vcols.empty:
        raise SheetLayoutError(f"[{grid.name}]: the header on row {header_pos + 1} has no year columns")
    attrs = _attribute_columns(header, spec)
    body = _text_cells(grid.cells.iloc[header_pos + 1 :])
    excel_row = np.arange(header_pos + 2, header_pos + 2 + len(body), dtype="int32")
    entity = (
        body[entity_col].reset_index(drop=True)
        if entity_col in body
        else pd.Series(pd.NA, index=range(len(body)), dtype=STR)
    )
    values = body[vcols["col"].tolist()].reset_index(drop=True)
    has_value = values.notna().any(axis=1)
    has_attr = (
        body[list(attrs.values())].notna().any(axis=1).reset_index(drop=True)
        if attrs
        else pd.Series(False, index=entity.index)
    )
    is_blank = entity.isna() & ~has_value & ~has_attr
    is_heading = entity.notna() & ~has_value
    is_orphan = entity.isna() & (has_value | has_attr)
    is_entity = entity.notna() & has_value

    # region context: headings (country sheets) or entity rows (region sheets) named in `regions` are regions
    top = {_norm(r) for r in file_spec.regions}
    named_region = entity.map(lambda s: _norm(s) in top, na_action="ignore").fillna(False).astype(bool)
    marker = is_heading if spec.entity == "country" else is_entity
    region = entity.where(marker & named_region).ffill()
    sub = entity.where(marker & ~named_region)
    sub = sub.mask(marker & named_region, "\x00").ffill().replace("\x00", pd.NA)

    skipped = pd.DataFrame(
        {
            "sheet": grid.name,
            "excel_row": excel_row[(is_blank | is_heading).to_numpy()],
            "reason": np.where(
                is_blank[is_blank | is_heading],
                "blank",
                np.where(named_region[is_blank | is_heading], "region_heading", "subregion_heading"),
            ),
            "label": entity[is_blank | is_heading].astype(object).to_numpy(),
        }
    )

    failures = []
    quarantined = pd.DataFrame(columns=["sheet", "excel_row"])
    if is_orphan.any():
        orphan = body.reset_index(drop=True)[is_orphan]
        quarantined = orphan.rename(columns=lambda c: f"col_{c}").assign(
            sheet=grid.name, excel_row=excel_row[is_orphan.to_numpy()]
        )
        rows = excel_row[is_orphan.to_numpy()]
        failures.append(
            _failure_frame(
                grid.name,
                rows,
                _entity_cells(entity_col, rows),
                spec.header_label,
                pd.NA,
                "entity_missing",
                severity,
                f"The '{spec.header_label}' cell is empty but the row has values; name the {spec.entity} or delete the row.",
            )
        )

    # melt entity rows x value columns (Arrow-backed strings, no Python loop over cells)
    ent_idx = np.flatnonzero(is_entity.to_numpy())
    n_e, n_v = len(ent_idx), len(vcols)
    raw = values.iloc[ent_idx].to_numpy(dtype=object).ravel()  # row-major: entity, then value column
    rep = lambda a: np.repeat(np.asarray(a), n_v)  # noqa: E731
    til = lambda a: np.tile(np.asarray(a), n_e)  # noqa: E731
    cell_text = pd.Series(raw, dtype=STR)
    number = pd.to_numeric(cell_text.str.replace(",", "", regex=False), errors="coerce")
    missing_marks = {m.strip() for m in file_spec.missing}
    gone_marks = {m.strip() for m in file_spec.not_existing}
    status = np.select(
        [
            cell_text.isna().to_numpy(),
            cell_text.isin(missing_marks).fillna(False).to_numpy(),
            cell_text.isin(gone_marks).fillna(False).to_numpy(),
            number.notna().to_numpy(),
        ],
        ["empty", "missing", "not_existing", "value"],
        default="invalid",
    )
    scale = til(vcols["scale"].to_numpy(dtype="float64"))
    value = number.to_numpy(dtype="float64", na_value=np.nan)
    value = np.where(status == "value", value, np.nan)
    rows_excel = rep(excel_row[ent_idx])
    cols = til(vcols["col"].to_numpy())
    names = entity.iloc[ent_idx].to_numpy(dtype=object)
    out = pd.DataFrame(
        {
            "sheet": grid.name,
            "measure": til(vcols["measure"].to_numpy(dtype=object)),
            "unit": til(vcols["unit"].to_numpy(dtype=object)),
            "base_unit": spec.base_unit,
            "entity_type": spec.entity,
            "entity_name": rep(names),
            "region": rep(region.iloc[ent_idx].to_numpy(dtype=object)),
            "subregion": rep(sub.iloc[ent_idx].to_numpy(dtype=object)),
            "year": til(vcols["year"].to_numpy(dtype="int32")),
            "value": value,
            "value_base": value * scale,
            "status": status,
            "raw_value": cell_text.to_numpy(dtype=object, na_value=None),
            "price_base_year": til(pd.array(vcols["price_base_year"], dtype="Int32")),
            "excel_row": rows_excel,
            "cell": column_letters(cols).astype(object) + rows_excel.astype(str).astype(object),
        }
    )
    per_entity = {attr: body[col].reset_index(drop=True).iloc[ent_idx] for attr, col in attrs.items()}
    for attr in WIDE_ATTRIBUTES:
        out[attr] = rep(per_entity[attr].to_numpy(dtype=object)) if attr in per_entity else None
    # footnote marks: split once per entity row, then repeated over its years
    symbols, numbers = split_footnote_marks(per_entity.get("notes", pd.Series(pd.NA, index=range(n_e), dtype=STR)))
    out["footnote_symbols"] = rep(symbols.to_numpy(dtype=object, na_value=None))
    out["footnote_numbers"] = rep(numbers.to_numpy(dtype=object))
    out["value_base"] = out["value_base"].where(out["base_unit"] != "fraction", out["value"])

    bad = out["status"] == "invalid"
    if bad.any():
        b = out[bad]
        failures.append(
            _failure_frame(
                grid.name,
                b["excel_row"],
                b["cell"],
                b["year"].astype(str),
                b["raw_value"],
                "value_not_number",
                severity,
                "'"
                + b["raw_value"].astype(str)
                + "' for "
                + b["entity_name"].astype(str)
                + " in "
                + b["year"].astype(str)
                + " is not a number; write the number, '"
                + (file_spec.missing[0] if file_spec.missing else "...")
                + "' for no data or '"
                + (file_spec.not_existing[0] if file_spec.not_existing else "xxx")
                + "' for did not exist.",
            )
        )

    if spec.entity == "country" and n_e:
        others = {_norm(o) for o in file_spec.other_entities}
        other = np.array([_norm(n) in others for n in names], dtype=bool)  # one check per entity row, not per cell
        out["entity_type"] = np.repeat(np.where(other, "other", "country"), n_v)
        iso = map_countries(pd.Series(names, dtype=STR), country_lookup).mask(other)
        out["country_iso3"] = np.repeat(iso.to_numpy(dtype=object, na_value=None), n_v)
        unknown = iso.isna().to_numpy() & ~other
        if unknown.any():
            unknown_names = pd.Series(names[unknown], dtype=STR)
            hint = suggest(
                unknown_names,
                fold_key(as_text(country_lookup["alias"])),
                country_lookup["alias"],
                entities=country_lookup["iso3"],
                kind="country",
            )
            rows = excel_row[ent_idx][unknown]
            failures.append(
                _failure_frame(
                    grid.name,
                    rows,
                    _entity_cells(entity_col, rows),
                    spec.header_label,
                    unknown_names.to_numpy(dtype=object),
                    "country_unknown",
                    severity,
                    (
                        "'"
                        + unknown_names.astype(str)
                        + "' is not a known country; add it to reference/country_aliases.csv."
                    ).to_numpy(),
                    hint.to_numpy(dtype=object, na_value=None),
                )
            )
    else:
        out["country_iso3"] = None

    return WideResult(
        values=out,
        skipped=skipped,
        quarantined=quarantined,
        failures=pd.concat(failures, ignore_index=True) if failures else _no_failures(),
        footnotes=pd.DataFrame(columns=["key", "text", "sheet", "excel_row"]),
        rows_read=len(body),
        header_rows={grid.name: header_pos + 1},
        captured={grid.name: captured},
        sheets=[grid.name],
    )


def _no_failures() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["sheet", "excel_row", "cell", "column", "value", "rule", "severity", "message", "suggestion"]
    )
