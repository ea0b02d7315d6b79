"""The typed model of ``sources/<agency>.yaml``: how to read one agency's files.

Adding an agency is a new YAML file (and maybe reference rows), never new Python. A YAML that does not fit this
model is rejected with :class:`SourceConfigError`, whose message names the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Discriminator, Field, StrictBool, Tag, ValidationError, model_validator

from schemas.outline import YAML_LOADER, first_match
from schemas.spec_base import (
    STAGES,
    TYPED_COLUMNS,
    UNIT_FACTORS,
    FileKind,
    FxSpec,
    HeaderSpec,
    KeepRows,
    SourceConfigError,
    _Strict,
)
from schemas.spec_records import (
    FIELD_NAME,
    NUMBER_TYPES,
    RECORD_TYPES,
    ControlTotal,
    RecordColumn,
    RecordsFileSpec,
    summable_columns,
)
from schemas.spec_remote import RemoteSpec
from schemas.spec_table import FileSpec
from schemas.spec_wide import (
    WIDE_ATTRIBUTES,
    YEAR_HEADER,
    EditionSpec,
    FootnoteSheetSpec,
    ValueColumns,
    WideFileSpec,
    WideSheetSpec,
)

__all__ = [
    "FIELD_NAME",
    "NUMBER_TYPES",
    "RECORD_TYPES",
    "STAGES",
    "TYPED_COLUMNS",
    "UNIT_FACTORS",
    "WIDE_ATTRIBUTES",
    "YEAR_HEADER",
    "AnyFileSpec",
    "AnySpec",
    "ControlTotal",
    "EditionSpec",
    "FileKind",
    "FileSpec",
    "FootnoteSheetSpec",
    "FxSpec",
    "HeaderSpec",
    "KIND_NAMES",
    "KeepRows",
    "RecordColumn",
    "RecordsFileSpec",
    "RemoteSpec",
    "SourceConfig",
    "SourceConfigError",
    "ValueColumns",
    "WideFileSpec",
    "WideSheetSpec",
    "kind_name",
    "load_source",
    "load_sources",
    "summable_columns",
]


def _check_controls(configs: list[SourceConfig], directory: Path) -> None:
    """Every control total names a dataset some source declares, a column of it that sums and its key columns."""
    datasets: dict[str, list[RecordsFileSpec]] = {}
    for cfg in configs:
        for spec in cfg.files:
            if isinstance(spec, RecordsFileSpec):
                datasets.setdefault(spec.dataset, []).append(spec)
    for cfg in configs:
        for spec in cfg.files:
            if not isinstance(spec, RecordsFileSpec):
                continue
            for i, control in enumerate(spec.control_totals):
                where = f"{directory}: {cfg.agency} dataset {spec.dataset} control_totals[{i}]"
                others = datasets.get(control.dataset)
                if not others:
                    raise SourceConfigError(
                        f"{where}: no source declares dataset '{control.dataset}' (declared: {sorted(datasets)})"
                    )
                for other in others:
                    if control.sum not in summable_columns(other):
                        raise SourceConfigError(
                            f"{where}: '{control.sum}' is not a number column of dataset {control.dataset} "
                            f"(it has {sorted(summable_columns(other))})"
                        )
                    unknown = sorted({theirs for _, theirs in control.keys} - set(other.columns))
                    if unknown:
                        raise SourceConfigError(f"{where}: dataset {control.dataset} has no column(s) {unknown}")


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
    #: true: the agency's lines are sensitive: published only to the full warehouse (encrypted when a key is set) and
    #: left out of the analyst edition published beside it (warehouse/analyst.py, docs/adr/0010); true or false only
    restricted: StrictBool = False
    #: where the agency's files wait when not in the local inbox (SFTP, an object store, another folder): mirrored
    #: into its inbox folder before discovery (schemas/spec_remote.py, flows/remote.py); None: the local inbox
    remote: RemoteSpec | None = None
    files: list[AnyFileSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _fiscal_year_from_gregorian(self) -> SourceConfig:
        if self.fiscal_calendar == "hijri" and any(getattr(f, "fiscal_year_from", None) for f in self.files):
            raise ValueError("fiscal_year_from works for Gregorian fiscal years only (this agency uses Hijri years)")
        return self

    def spec_for(self, relative_name: str) -> AnySpec | None:
        """The first file spec whose pattern matches a file name, or None."""
        i = first_match([spec.pattern for spec in self.files], relative_name)
        return None if i is None else self.files[i]


def load_source(path: Path) -> SourceConfig:
    """Load and validate one source YAML; errors name the file and the key."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
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
    _check_controls(configs, directory)
    return sorted(configs, key=lambda c: c.agency)
