"""The DuckDB catalog, daily metrics, activation quality, progression, reports, exports."""
