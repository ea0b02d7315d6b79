"""Reference workbooks with the years across the columns (e.g. SIPRI military expenditure) -> long rows.

Pure functions over a sheet's grid of text cells (pandas, one column per Excel column, row i = Excel row i + 1):
find the header by its label, tell year columns from attribute columns by the header text, separate region and
sub-region heading rows from entity rows, and melt entity x year into one row per cell with a status: ``value``,
``missing`` (the 'no data' mark, e.g. '...': NULL, never 0), ``not_existing`` (e.g. 'xxx'), ``empty`` (a blank
cell) or ``invalid`` (anything else; a warning for the steward). Every row below the header is accounted for:
an entity row (loaded), a heading, a blank row (skipped) or a row with values and no name (quarantined).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from schemas.rules import severity as rule_severity
from schemas.sources import WIDE_ATTRIBUTES, WideFileSpec, WideSheetSpec
from transforms.countries import map_countries, suggest
from transforms.text import STR, as_text, column_letter, fold_key, normalize_header

FOOTNOTE_NUMBERS = re.compile(r"\d+")


class SheetLayoutError(ValueError):
    """A sheet that does not look as its config says (no header label, no year columns); message for a steward."""


@dataclass
class Grid:
    """One worksheet as text: ``cells`` has one column per Excel column (named by its 0-based absolute index)."""

    name: str
    cells: pd.DataFrame


@dataclass
class WideResult:
    values: pd.DataFrame  # one row per entity x value column
    skipped: pd.DataFrame  # sheet, excel_row, reason, label
    quarantined: pd.DataFrame  # sheet, excel_row, + the row's cells as text
    failures: pd.DataFrame  # sheet, excel_row, cell, column, value, rule, severity, message, suggestion
    footnotes: pd.DataFrame  # key, text, sheet, excel_row
    rows_read: int = 0
    header_rows: dict[str, int] = field(default_factory=dict)  # sheet -> Excel row of its header
    captured: dict[str, dict[str, str]] = field(default_factory=dict)  # sheet -> named groups (price_base_year ...)
    sheets: list[str] = field(default_factory=list)  # the workbook's sheets the config described, in order read


def column_letters(indices: np.ndarray) -> np.ndarray:
    """0-based column indices -> Excel letters, vectorised over distinct indices."""
    uniq, inverse = np.unique(indices, return_inverse=True)
    return np.array([column_letter(int(i)) for i in uniq], dtype=object)[inverse]


def _norm(text: object) -> str:
    return normalize_header(text)


def find_sheet(names: list[str], pattern: str) -> tuple[str, dict[str, str]] | None:
    """The first sheet whose whole name matches ``pattern`` (case-insensitive), with the named groups."""
    rx = re.compile(pattern, re.IGNORECASE)
    for name in names:
        m = rx.fullmatch(name.strip())
        if m:
            return name, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


def locate_header(grid: Grid, spec: WideSheetSpec) -> tuple[int, int]:
    """(row position, column) of the cell holding ``header_label`` within the first ``max_scan_rows`` rows."""
    head = grid.cells.iloc[: spec.max_scan_rows]
    want = _norm(spec.header_label)
    for pos, row in enumerate(head.itertuples(index=False, name=None)):  # a few dozen rows of the preamble
        for col, cell in zip(head.columns, row):
            if isinstance(cell, str) and _norm(cell) == want:
                return pos, int(col)
    raise SheetLayoutError(
        f"[{grid.name}]: no '{spec.header_label}' header cell in the first {spec.max_scan_rows} rows"
    )


def _preamble_text(grid: Grid, header_pos: int) -> str:
    above = grid.cells.iloc[:header_pos]
    return "\n".join(str(v) for v in above.to_numpy().ravel() if isinstance(v, str))


def _value_columns(header: pd.Series, spec: WideSheetSpec, captured: dict[str, str]) -> pd.DataFrame:
    """One row per header cell holding values: column index, year, measure, unit, scale, price_base_year."""
    rows = []
    for col, text in header.items():
        if not isinstance(text, str):
            continue
        for vc in spec.values:
            m = re.fullmatch(vc.header, text.strip())
            if m:
                rows.append(
                    (
                        int(col),
                        int(m.group("year")),
                        vc.measure or spec.measure,
                        vc.unit or spec.unit,
                        vc.scale or spec.scale,
                        captured.get("price_base_year") if vc.sheet_groups else None,
                        text.strip(),
                    )
                )
                break
    return pd.DataFrame(rows, columns=["col", "year", "measure", "unit", "scale", "price_base_year", "header"])


def _attribute_columns(header: pd.Series, spec: WideSheetSpec) -> dict[str, int]:
    wanted = {_norm(alias): attr for attr, aliases in spec.attributes.items() for alias in aliases}
    found: dict[str, int] = {}
    for col, text in header.items():
        attr = wanted.get(_norm(text)) if isinstance(text, str) else None
        if attr and attr not in found:
            found[attr] = int(col)
    return found


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


def _text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: as_text(c.astype(STR)))


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


def standardise_footnotes(grid: Grid) -> WideResult:
    """A footnotes sheet: first column the mark (a symbol or a number), the first text to its right the note.
    Rows with a mark and a note load; a mark without a note (a title) is a heading; empty rows are blank."""
    cells = _text_cells(grid.cells)
    excel_row = np.arange(1, len(cells) + 1, dtype="int32")
    if cells.shape[1] == 0:
        return WideResult(
            _empty_values(),
            pd.DataFrame(columns=["sheet", "excel_row", "reason", "label"]),
            pd.DataFrame(columns=["sheet", "excel_row"]),
            _no_failures(),
            pd.DataFrame(columns=["key", "text", "sheet", "excel_row"]),
            rows_read=0,
            sheets=[grid.name],
        )
    key = cells.iloc[:, 0].reset_index(drop=True)
    rest = cells.iloc[:, 1:].reset_index(drop=True)
    text = rest.bfill(axis=1).iloc[:, 0] if rest.shape[1] else pd.Series(pd.NA, index=key.index, dtype=STR)
    is_note = key.notna() & text.notna()
    is_blank = key.isna() & text.isna()
    loose = key.isna() & text.notna()  # a note without a mark: keep it, keyed by its row
    key = key.where(~loose, "row " + pd.Series(excel_row).astype(str))
    keep = is_note | loose
    notes = pd.DataFrame(
        {
            "key": key[keep].astype(object).to_numpy(),
            "text": text[keep].astype(object).to_numpy(),
            "sheet": grid.name,
            "excel_row": excel_row[keep.to_numpy()],
        }
    )
    skip = ~keep
    skipped = pd.DataFrame(
        {
            "sheet": grid.name,
            "excel_row": excel_row[skip.to_numpy()],
            "reason": np.where(is_blank[skip], "blank", "heading"),
            "label": key[skip].astype(object).to_numpy(),
        }
    )
    return WideResult(
        _empty_values(),
        skipped,
        pd.DataFrame(columns=["sheet", "excel_row"]),
        _no_failures(),
        notes,
        rows_read=len(cells),
        sheets=[grid.name],
    )


def _empty_values() -> pd.DataFrame:
    return pd.DataFrame()


def standardise_workbook(grids: list[Grid], spec: WideFileSpec, country_lookup: pd.DataFrame) -> WideResult:
    """Every sheet the config describes, plus the footnotes sheet; raises :class:`SheetLayoutError` when a
    required sheet is missing or does not look as described (the file then fails as a whole, nothing half-loaded)."""
    names = [g.name for g in grids]
    by_name = {g.name: g for g in grids}
    severity = dict(spec.severity)
    parts: list[WideResult] = []
    for sheet_spec in spec.sheets:
        hit = find_sheet(names, sheet_spec.sheet)
        if hit is None:
            if sheet_spec.required:
                raise SheetLayoutError(
                    f"no sheet matches '{sheet_spec.sheet}' (for {sheet_spec.measure}); sheets are: {', '.join(names)}"
                )
            continue
        name, groups = hit
        parts.append(standardise_sheet(by_name[name], sheet_spec, spec, groups, country_lookup, severity))
    if spec.footnotes is not None:
        hit = find_sheet(names, spec.footnotes.sheet)
        if hit is not None:
            parts.append(standardise_footnotes(by_name[hit[0]]))
        elif spec.footnotes.required:
            raise SheetLayoutError(
                f"no footnotes sheet matches '{spec.footnotes.sheet}'; sheets are: {', '.join(names)}"
            )

    def cat(attr):
        return pd.concat(
            [getattr(p, attr) for p in parts if len(getattr(p, attr))] or [getattr(parts[0], attr)], ignore_index=True
        )

    return WideResult(
        values=cat("values"),
        skipped=cat("skipped"),
        quarantined=cat("quarantined"),
        failures=cat("failures"),
        footnotes=cat("footnotes"),
        rows_read=sum(p.rows_read for p in parts),
        header_rows={k: v for p in parts for k, v in p.header_rows.items()},
        captured={k: v for p in parts for k, v in p.captured.items()},
        sheets=[name for p in parts for name in p.sheets],
    )


def published_year(grids: list[Grid], pattern: str | None, scan_rows: int = 8) -> int | None:
    """The year a workbook states it was published (e.g. '© SIPRI 2022' in a title cell), if the config says how."""
    if not pattern:
        return None
    rx = re.compile(pattern)
    for grid in grids:
        for cell in grid.cells.iloc[:scan_rows].to_numpy().ravel():
            m = rx.search(cell) if isinstance(cell, str) else None
            if m:
                return int(m.group("year"))
    return None


def edition_of(file_name: str, spec: WideFileSpec) -> dict[str, str] | None:
    """The edition label and the groups it was made of, from the file name; None when the name does not match."""
    m = re.search(spec.edition.file_name, file_name)
    if not m:
        return None
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    return {"edition": spec.edition.label.format(**groups), **groups}
