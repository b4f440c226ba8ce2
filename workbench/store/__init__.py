"""Storage: the append-only Parquet logs, the DuckDB views over them, read-only reads of
MLflow's tables, the runs index, the read-only SQL console, and MLflow's setup for a project.

May import: the kernel (errors, config, names, project, plugins). No other subpackage.
"""
