"""The config model of kind records: typed columns of a long-format table, its dataset, control totals."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.spec_base import FxSpec, HeaderSpec, KeepRows, PasswordSpec, _check_regex, _Strict
from schemas.spec_table import FileSpec

RECORD_TYPES = ("text", "integer", "decimal", "year", "date", "country", "currency", "money")
FIELD_NAME = r"^[a-z][a-z0-9_]{0,40}$"


class RecordColumn(_Strict):
    """One declared column of a records file: where it is (header aliases), what it holds and what is allowed."""

    header: list[str] = Field(min_length=1, description="header texts this column may have in the file")
    type: Literal["text", "integer", "decimal", "year", "date", "country", "currency", "money"] = "text"
    required: bool = False
    allowed: list[str] | None = Field(default=None, description="text: the only values allowed (any case)")
    pattern: str | None = Field(default=None, description="text: a regex the whole value must match")
    min: float | None = Field(default=None, description="integer, decimal, year, money: the smallest value allowed")
    max: float | None = Field(default=None, description="integer, decimal, year, money: the largest value allowed")
    ranges: Literal["first", "last"] | None = Field(
        default=None,
        description="year: how to read a range such as '2022-2023' or '2023/24' (its first or last year); "
        "none declared: a range fails as year_unreadable, never a guess",
    )
    scale: float = Field(default=1.0, gt=0, description="decimal, money: multiplier from the cell to the unit")
    unit: str | None = Field(default=None, description="what the number measures, e.g. 'US$ m.' (documented)")
    currency: str | None = Field(
        default=None, description="money: the currency column of the file, or one ISO 4217 code for every row"
    )
    as_of: str | None = Field(
        default=None, description="money: the date or year column whose rate converts the amount to US$"
    )
    description: str | None = None

    @field_validator("header")
    @classmethod
    def _aliases_not_empty(cls, v: list[str]) -> list[str]:
        if not all(isinstance(a, str) and a.strip() for a in v):
            raise ValueError("every header alias must be a non-empty text")
        return v

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return v if v is None else _check_regex(v)

    @model_validator(mode="after")
    def _fits_type(self) -> RecordColumn:
        numeric = ("integer", "decimal", "year", "money")
        if (self.allowed is not None or self.pattern is not None) and self.type != "text":
            raise ValueError(f"'allowed' and 'pattern' apply to text columns, not {self.type}")
        if (self.min is not None or self.max is not None) and self.type not in numeric:
            raise ValueError(f"'min' and 'max' apply to {', '.join(numeric)} columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.ranges is not None and self.type != "year":
            raise ValueError("'ranges' applies to year columns")
        if self.scale != 1.0 and self.type not in ("decimal", "money"):
            raise ValueError("'scale' applies to decimal and money columns")
        if self.type == "money" and not (self.currency and self.as_of):
            raise ValueError(
                "a money column needs 'currency' (a column or an ISO code) and 'as_of' (a date or year column)"
            )
        if self.type != "money" and (self.currency or self.as_of):
            raise ValueError("'currency' and 'as_of' apply to money columns")
        return self


class ControlTotal(_Strict):
    """A column of these records states the total of another dataset: per key, the other dataset's ``sum`` column
    summed over its records with the same key must match within ``tolerance`` (relative), like a totals row. A
    mismatch is a warning (rule control_total_mismatch) on the stating record; the records load either way."""

    column: str = Field(description="the column of these files that states the total (integer, decimal or money)")
    by: list[str] = Field(min_length=1, description="columns of these files that say what the total covers")
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="the dataset whose records it totals")
    sum: str = Field(description="the column of that dataset that is summed (a <money>_usd column is allowed)")
    match_by: list[str] | None = Field(default=None, description="that dataset's key columns, in the order of by")
    tolerance: float = Field(default=0.0001, ge=0, le=0.1, description="relative difference allowed")

    @property
    def keys(self) -> list[tuple[str, str]]:
        return list(zip(self.by, self.match_by or self.by, strict=True))


class RecordsFileSpec(_Strict):
    """A long-format table (CSV or one sheet): one record per row, columns declared with a type, loaded into a
    named dataset (view ``records_<dataset>``)."""

    kind: Literal["records"]
    pattern: str = Field(description="glob, relative to the agency's inbox folder")
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    description: str | None = None
    sheet: str | int = 0
    password: PasswordSpec | None = Field(
        default=None, description="encrypted workbooks: where their password comes from ({env: VAR} or {secret: name})"
    )
    header: HeaderSpec = HeaderSpec(row=1)
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    date_order: Literal["day_first", "month_first"] | None = Field(
        default=None, description="overrides the agency's date_order for these files"
    )
    missing: list[str] = Field(default_factory=list, description="cell texts that mean 'no value' (NULL)")
    constants: dict[str, str] = Field(default_factory=dict, description="declared column -> the value of every row")
    keep_rows: KeepRows | None = None
    key: list[str] = Field(default_factory=list, description="columns that identify a record: a repeat is a failure")
    fx: FxSpec = FxSpec()
    severity: dict[str, Literal["block", "warn"]] = Field(default_factory=dict, description="rule id -> block | warn")
    columns: dict[str, RecordColumn] = Field(min_length=1)
    control_totals: list[ControlTotal] = Field(default_factory=list)

    _severity_known = field_validator("severity")(FileSpec._known_rules.__func__)  # type: ignore[attr-defined]

    @field_validator("columns")
    @classmethod
    def _names(cls, v: dict[str, RecordColumn]) -> dict[str, RecordColumn]:
        bad = sorted(name for name in v if not re.match(FIELD_NAME, name))
        if bad:
            raise ValueError(f"column name(s) {bad} must be lower-case letters, digits and '_' (a SQL name)")
        reserved = sorted(set(v) & {"file_key", "sheet", "excel_row", "warning_rules"})
        if reserved:
            raise ValueError(f"column name(s) {reserved} are reserved (every records view has them); rename them")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RecordsFileSpec:
        from schemas.rules import WARNABLE

        cols = self.columns
        derived = {f"{n}_{s}" for n, c in cols.items() for s in _derived_suffixes(c)}
        clash = sorted(derived & set(cols))
        if clash:
            raise ValueError(f"column(s) {clash} clash with the columns derived from another (e.g. <money>_usd)")
        for name, col in cols.items():
            if col.type != "money":
                continue
            cur = col.currency or ""
            if cur in cols:
                if cols[cur].type != "currency":
                    raise ValueError(f"{name}: currency '{cur}' is a {cols[cur].type} column, not a currency column")
            elif not re.fullmatch(r"[A-Z]{3}", cur):
                raise ValueError(f"{name}: currency '{cur}' is neither a column of these files nor an ISO code")
            when = cols.get(col.as_of or "")
            if when is None or when.type not in ("date", "year"):
                raise ValueError(f"{name}: as_of '{col.as_of}' must be a date or year column of these files")
        unknown = sorted((set(self.constants) | set(self.key)) - set(cols))
        if unknown:
            raise ValueError(f"constants/key name column(s) {unknown} that are not declared under columns")
        if self.keep_rows and self.keep_rows.column not in cols:
            raise ValueError(f"keep_rows: '{self.keep_rows.column}' is not a declared column")
        for i, control in enumerate(self.control_totals):
            where = f"control_totals[{i}]"
            stated = cols.get(control.column)
            if stated is None or stated.type not in NUMBER_TYPES:
                raise ValueError(f"{where}: column '{control.column}' must be an integer, decimal or money column")
            missing = sorted(set(control.by) - set(cols))
            if missing:
                raise ValueError(f"{where}: by names column(s) {missing} that are not declared under columns")
            if control.match_by is not None and len(control.match_by) != len(control.by):
                raise ValueError(f"{where}: match_by needs one column for each of by {control.by}")
        refused = sorted(r for r, level in self.severity.items() if level == "warn" and r not in WARNABLE["records"])
        if refused:
            raise ValueError(
                f"severity: {refused} cannot be 'warn' for records files; rules that may warn: "
                f"{sorted(WARNABLE['records'])}"
            )
        return self

    @property
    def is_csv(self) -> bool:
        return self.pattern.lower().endswith((".csv", ".txt"))

    @property
    def header_aliases(self) -> dict[str, list[str]]:
        return {name: col.header for name, col in self.columns.items() if name not in self.constants}

    @property
    def required_columns(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.required and n not in self.constants]


NUMBER_TYPES = ("integer", "decimal", "money")


def summable_columns(spec: RecordsFileSpec) -> set[str]:
    """The columns of a dataset a control total may sum: its number columns and the US$ value of its money ones."""
    cols = spec.columns
    return {n for n, c in cols.items() if c.type in NUMBER_TYPES} | {
        f"{n}_usd" for n, c in cols.items() if c.type == "money"
    }


def _derived_suffixes(col: RecordColumn) -> tuple[str, ...]:
    """Columns a declared one adds to the dataset's view: a country's text as written, a money amount's US$ value
    and the rate that made it."""
    if col.type == "country":
        return ("as_written",)
    if col.type == "money":
        return ("currency", "usd", "fx_rate", "fx_rate_date", "fx_provider", "fx_policy")
    return ()
