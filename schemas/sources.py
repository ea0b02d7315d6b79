"""The typed model of ``sources/<agency>.yaml``: how to read one agency's files.

Adding an agency is a new YAML file (and maybe reference rows), never new Python. A YAML that does not fit this
model is rejected with :class:`SourceConfigError`, whose message names the file and the key.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator


class FileKind(StrEnum):
    budget = "budget"
    programs = "programs"


#: canonical column -> required? per file kind (the raw contract after column mapping)
CANONICAL_COLUMNS: dict[FileKind, dict[str, bool]] = {
    FileKind.budget: {
        "program_code": True,
        "program_name": False,
        "partner_country": True,
        "category": True,
        "fiscal_year": True,
        "amount": True,
        "currency": False,
        "stage": False,
        "transaction_date": False,
    },
    FileKind.programs: {
        "program_code": True,
        "name_en": True,
        "name_ar": False,
        "partner_countries": False,
        "category": False,
        "start_date": False,
        "end_date": False,
        "status": False,
    },
}

#: columns whose cells are read as typed values (numbers, dates); every other column is read as text
TYPED_COLUMNS = {"amount", "transaction_date", "start_date", "end_date"}

UNIT_FACTORS = {"ones": 1.0, "thousands": 1_000.0, "millions": 1_000_000.0}
STAGES = ("allocated", "committed", "obligated", "disbursed")


class SourceConfigError(ValueError):
    """A source YAML that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderSpec(_Strict):
    """Where the header row is: a fixed Excel row (1-based) or detected by the expected column names."""

    row: int | None = Field(default=None, ge=1, description="Excel row number of the header (1-based)")
    detect: bool = False
    max_scan_rows: int = Field(default=20, ge=1, le=500)

    @model_validator(mode="after")
    def _one_way(self) -> HeaderSpec:
        if (self.row is not None) != self.detect:
            return self
        raise ValueError("give either 'row' or 'detect: true', not both and not neither")


class FxSpec(_Strict):
    """Which rate converts a line: the transaction-date rate (bounded look-back) or the fiscal-period average."""

    policy: Literal["transaction_date", "fiscal_period_average"] = "fiscal_period_average"
    by_stage: dict[
        Literal["allocated", "committed", "obligated", "disbursed"],
        Literal["transaction_date", "fiscal_period_average"],
    ] = Field(default_factory=dict)
    lookback_days: int = Field(default=7, ge=0, le=31)


class KeepRows(_Strict):
    """Which rows are in scope: the others are skipped (reason ``filtered``), counted, never silently dropped."""

    column: str = Field(description="a canonical column of the file (mapped or constant)")
    values: list[str] | None = Field(default=None, alias="in", description="keep rows whose cell is one of these")
    matches: str | None = Field(default=None, description="keep rows whose cell matches this regex")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> KeepRows:
        if (self.values is None) == (self.matches is None):
            raise ValueError("give either 'in' (a list of values) or 'matches' (a regex), not both and not neither")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"'matches' is not a regular expression: {exc}") from None
        return self


class FileSpec(_Strict):
    kind: FileKind
    pattern: str = Field(description="glob, relative to the agency's inbox folder")
    sheet: str | int = 0
    header: HeaderSpec = HeaderSpec(row=1)
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    unit: Literal["ones", "thousands", "millions", "from_header"] = "ones"
    default_currency: str | None = None
    default_stage: Literal["allocated", "committed", "obligated", "disbursed"] | None = None
    totals_label: str | None = Field(default=None, description="regex (case-insensitive) marking a totals row")
    fx: FxSpec = FxSpec()
    totals_tolerance: float = Field(default=0.0001, ge=0, le=0.1, description="relative; totals row vs sum of lines")
    severity: dict[str, Literal["block", "warn"]] = Field(default_factory=dict, description="rule id -> block | warn")
    date_order: Literal["day_first", "month_first"] | None = Field(
        default=None, description="overrides the agency's date_order for these files"
    )
    missing: list[str] = Field(
        default_factory=list, description="cell texts that mean 'no value' (e.g. 'Not given', '.', 'n/a')"
    )
    constants: dict[str, str] = Field(
        default_factory=dict, description="canonical column -> the value every row has (a column the file lacks)"
    )
    keep_rows: KeepRows | None = None
    fiscal_year_from: Literal["transaction_date"] | None = Field(
        default=None, description="derive the fiscal year from this date column where the file states none"
    )
    columns: dict[str, list[str]]

    @field_validator("columns")
    @classmethod
    def _aliases_not_empty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, aliases in v.items():
            if not aliases or not all(isinstance(a, str) and a.strip() for a in aliases):
                raise ValueError(f"column '{key}' needs at least one non-empty header alias")
        return v

    @field_validator("severity")
    @classmethod
    def _known_rules(cls, v: dict[str, str]) -> dict[str, str]:
        from schemas.rules import RULES

        unknown = sorted(set(v) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}; known: {sorted(RULES)}")
        return v

    @model_validator(mode="after")
    def _warn_only_where_a_row_can_load(self) -> FileSpec:
        from schemas.rules import WARNABLE

        allowed = WARNABLE[self.kind.value]
        refused = sorted(rule for rule, level in self.severity.items() if level == "warn" and rule not in allowed)
        if refused:
            raise ValueError(
                f"severity: {refused} cannot be 'warn' for {self.kind.value} files: a row failing it has no value "
                f"to load; rules that may warn: {sorted(allowed)}"
            )
        return self

    @model_validator(mode="after")
    def _columns_fit_kind(self) -> FileSpec:
        known = CANONICAL_COLUMNS[self.kind]
        unknown = sorted((set(self.columns) | set(self.constants)) - set(known))
        if unknown:
            raise ValueError(f"unknown column(s) {unknown} for kind '{self.kind.value}'; known: {sorted(known)}")
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            raise ValueError(f"column(s) {both} are both read from the file and constant: choose one")
        derived = {"fiscal_year"} if self.fiscal_year_from else set()
        missing = sorted(
            c
            for c, required in known.items()
            if required and c not in self.columns and c not in self.constants and c not in derived
        )
        if missing:
            raise ValueError(f"required column(s) {missing} have no aliases")
        if self.fiscal_year_from and self.fiscal_year_from not in self.columns:
            raise ValueError(f"fiscal_year_from: '{self.fiscal_year_from}' is not a column of these files")
        if self.keep_rows and self.keep_rows.column not in set(self.columns) | set(self.constants):
            raise ValueError(f"keep_rows: '{self.keep_rows.column}' is not a column of these files")
        if self.kind is FileKind.budget:
            if "currency" not in self.columns and "currency" not in self.constants and not self.default_currency:
                raise ValueError("budget files need a 'currency' column or a default_currency")
            if "stage" not in self.columns and "stage" not in self.constants and not self.default_stage:
                raise ValueError("budget files need a 'stage' column or a default_stage")
        return self

    @property
    def unit_factor(self) -> float | None:
        """Scale of the amount cells; None: read it from the amount header's text."""
        return UNIT_FACTORS.get(self.unit)

    @property
    def is_csv(self) -> bool:
        return self.pattern.lower().endswith((".csv", ".txt"))

    @property
    def header_aliases(self) -> dict[str, list[str]]:
        """column -> the header texts it may have (what the reader looks for)."""
        return self.columns

    @property
    def required_columns(self) -> list[str]:
        """Columns whose header must be found for the file to be read."""
        return [c for c, req in CANONICAL_COLUMNS[self.kind].items() if req and c in self.columns]


# -- reference datasets laid out with years across the columns (SIPRI military expenditure and the like) -------------

YEAR_HEADER = r"^(?P<year>\d{4})(\.0+)?$"
#: attribute columns a years-across-columns sheet may carry, besides the entity and the year columns
WIDE_ATTRIBUTES = ("notes", "currency", "fiscal_year_basis", "reporting_year", "omitted_countries")


def _check_regex(pattern: str, needs: tuple[str, ...] = ()) -> str:
    import re

    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    missing = [g for g in needs if g not in compiled.groupindex]
    if missing:
        raise ValueError(f"the pattern needs the named group(s) {missing}, e.g. (?P<{missing[0]}>\\d{{4}})")
    return pattern


class ValueColumns(_Strict):
    """Which header cells hold values: a regex whose named group ``year`` gives the year, and what they measure
    (defaults: the sheet's measure, unit and scale)."""

    header: str = YEAR_HEADER
    measure: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    unit: str | None = None
    scale: float | None = Field(default=None, gt=0)
    sheet_groups: bool = Field(
        default=True,
        description="record the sheet's captured groups (e.g. price_base_year) "
        "with these values; false for e.g. a current-prices column",
    )

    @field_validator("header")
    @classmethod
    def _year_group(cls, v: str) -> str:
        return _check_regex(v, ("year",))


class WideSheetSpec(_Strict):
    """One sheet of a years-across-columns workbook: one entity per row, one year per column."""

    sheet: str = Field(
        description="regex matched (whole, case-insensitive) against sheet names; named groups such as "
        "price_base_year are recorded with every value of the sheet"
    )
    entity: Literal["country", "region"] = "country"
    header_label: str = Field(description="text of the header cell above the entity names, e.g. 'Country'")
    max_scan_rows: int = Field(default=40, ge=1, le=500)
    measure: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    unit: str = Field(description="the unit as the sheet states it, e.g. 'US$ m.'")
    scale: float = Field(default=1.0, gt=0, description="multiplier from the stated unit to the base unit")
    base_unit: Literal["USD", "fraction", "local_currency", "count"]
    values: list[ValueColumns] = Field(default_factory=lambda: [ValueColumns()], min_length=1)
    attributes: dict[
        Literal["notes", "currency", "fiscal_year_basis", "reporting_year", "omitted_countries"], list[str]
    ] = Field(default_factory=dict)
    preamble: str | None = Field(
        default=None,
        description="regex searched in the text above the header; named "
        "groups (e.g. price_base_year) are recorded like the sheet's",
    )
    required: bool = True

    @field_validator("sheet", "preamble")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return v if v is None else _check_regex(v)


class EditionSpec(_Strict):
    """How to tell a file's edition: a regex on the file name with named groups, and a label made of them."""

    file_name: str
    label: str = Field(description="format string over the regex's named groups, e.g. '{first_year}-{last_year}'")
    published: str | None = Field(
        default=None,
        description="regex with a group 'year', searched in the first sheet's "
        "preamble, e.g. '© SIPRI (?P<year>\\d{4})'",
    )

    @field_validator("file_name")
    @classmethod
    def _regex(cls, v: str) -> str:
        return _check_regex(v)

    @model_validator(mode="after")
    def _label_uses_groups(self) -> EditionSpec:
        import re
        import string

        groups = set(re.compile(self.file_name).groupindex)
        used = {name for _, name, _, _ in string.Formatter().parse(self.label) if name}
        if used - groups:
            raise ValueError(f"label uses {sorted(used - groups)}, which the file_name pattern does not capture")
        return self


class FootnoteSheetSpec(_Strict):
    sheet: str = Field(description="regex matched against sheet names")
    required: bool = False


class WideFileSpec(_Strict):
    """A reference workbook with years across the columns (e.g. the SIPRI Military Expenditure Database)."""

    kind: Literal["years_across_columns"]
    pattern: str = Field(description="glob, relative to the source's inbox folder")
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    edition: EditionSpec
    missing: list[str] = Field(
        default_factory=lambda: ["...", ". ."], description="cells meaning 'no data' (NULL, never 0)"
    )
    not_existing: list[str] = Field(default_factory=lambda: ["xxx"], description="cells meaning 'did not exist'")
    regions: list[str] = Field(
        default_factory=list,
        description="heading/entity names that are top-level regions; other headings are sub-regions",
    )
    other_entities: list[str] = Field(
        default_factory=list,
        description="entity names that are neither countries nor regions (e.g. 'European Union'); loaded as 'other'",
    )
    footnotes: FootnoteSheetSpec | None = None
    severity: dict[str, Literal["block", "warn"]] = Field(default_factory=dict)
    sheets: list[WideSheetSpec] = Field(min_length=1)

    _severity_known = field_validator("severity")(FileSpec._known_rules.__func__)  # type: ignore[attr-defined]  # pydantic wraps the classmethod; the stub hides __func__

    @property
    def is_csv(self) -> bool:
        return False


# -- long-format tables of any publisher (registers, trackers): kind 'records', columns typed by the YAML ---------------

#: the types a records column may declare
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


class RecordsFileSpec(_Strict):
    """A long-format table (CSV or one sheet): one record per row, columns declared with a type, loaded into a
    named dataset (view ``records_<dataset>``)."""

    kind: Literal["records"]
    pattern: str = Field(description="glob, relative to the agency's inbox folder")
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    description: str | None = None
    sheet: str | int = 0
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


def _derived_suffixes(col: RecordColumn) -> tuple[str, ...]:
    """Columns a declared one adds to the dataset's view: a country's text as written, a money amount's US$ value
    and the rate that made it."""
    if col.type == "country":
        return ("as_written",)
    if col.type == "money":
        return ("currency", "usd", "fx_rate", "fx_rate_date", "fx_provider", "fx_policy")
    return ()


def _spec_tag(value: object) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in ("years_across_columns", "records") else "table"


AnyFileSpec = Annotated[
    Annotated[FileSpec, Tag("table")]
    | Annotated[WideFileSpec, Tag("years_across_columns")]
    | Annotated[RecordsFileSpec, Tag("records")],
    Discriminator(_spec_tag),
]
AnySpec = FileSpec | WideFileSpec | RecordsFileSpec
#: every file kind a source YAML may name
KIND_NAMES = ("budget", "programs", "years_across_columns", "records")


def kind_name(spec: AnySpec | None) -> str | None:
    """The file kind as stored in the warehouse: budget, programs, years_across_columns or records."""
    if spec is None:
        return None
    return spec.kind.value if isinstance(spec.kind, FileKind) else spec.kind


class SourceConfig(_Strict):
    agency: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    name_en: str
    name_ar: str | None = None
    inbox_dir: str
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    fiscal_year_label: Literal["start", "end"] = "end"
    fiscal_calendar: Literal["gregorian", "hijri"] = "gregorian"
    number_locale: Literal["en", "eu"] = "en"
    #: how d/m/yyyy-style dates are written; None: only dates that read one way are read, the others fail
    date_order: Literal["day_first", "month_first"] | None = None
    #: what happens to the rows of a file that leaves the inbox: keep them (default; the file is reported as
    #: withdrawn) or retract them (removed from the warehouse at the next run; the raw archive still holds the file)
    withdrawn: Literal["keep", "retract"] = "keep"
    files: list[AnyFileSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _fiscal_year_from_gregorian(self) -> SourceConfig:
        if self.fiscal_calendar == "hijri" and any(getattr(f, "fiscal_year_from", None) for f in self.files):
            raise ValueError("fiscal_year_from works for Gregorian fiscal years only (this agency uses Hijri years)")
        return self

    def spec_for(self, relative_name: str) -> AnySpec | None:
        """The first file spec whose pattern matches a file name, or None."""
        from fnmatch import fnmatch

        for spec in self.files:
            if fnmatch(relative_name, spec.pattern):
                return spec
        return None


def load_source(path: Path) -> SourceConfig:
    """Load and validate one source YAML; errors name the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceConfigError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SourceConfigError(f"{path}: expected a mapping at the top level")
    try:
        return SourceConfig.model_validate(raw)
    except ValidationError as exc:
        tags = {"table", "years_across_columns", "records"}  # the union's branch names: not keys a steward wrote
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in err['loc'] if p not in tags) or '(top)'}': {err['msg']}"
            for err in exc.errors()
        )
        raise SourceConfigError(f"{path}: {problems}") from None


def load_sources(directory: Path) -> list[SourceConfig]:
    """All ``*.yaml`` in a directory, sorted by agency; duplicate agencies or inbox folders are an error."""
    configs = [load_source(p) for p in sorted(directory.glob("*.yaml"))]
    seen: dict[str, str] = {}
    for cfg in configs:
        for key in (cfg.agency, f"dir:{cfg.inbox_dir}"):
            if key in seen:
                raise SourceConfigError(f"{directory}: '{key}' is declared twice ({seen[key]} and {cfg.agency})")
            seen[key] = cfg.agency
    return sorted(configs, key=lambda c: c.agency)
