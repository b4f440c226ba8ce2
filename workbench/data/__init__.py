"""Data snapshots: loading (Parquet, CSV, globs), digests, the deterministic split, and
validation against the config's schema.

May import: store and the kernel.
"""
