"""Sample projects (`workbench init --sample`) and the two-act demo.

May import: every core layer but cli.
"""
