"""The `workbench` command: one module per command group. Nothing in the core imports it.

May import: everything in the core.
"""
