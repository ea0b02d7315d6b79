"""DuckDB warehouse: DDL, loading into a staging copy, checks, atomic publish, read-only queries."""
