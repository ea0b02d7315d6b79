"""Pure DataFrame -> DataFrame normalisers. No Prefect, no DuckDB, no file I/O, no globals."""
