"""Workbench's Textual TUI. Found by the CLI through the `workbench.ui` entry point.

Nothing here imports mlflow, lightgbm, sklearn or pandas at module level: the first screen
paints from DuckDB over the Parquet logs and from MLflow's SQLite store read directly, and
every slow call runs in a thread worker.
"""
