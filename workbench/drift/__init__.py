"""Drift statistics: the reference profile made at training, the streaming counter that
bins current rows against it, the tests on binned counts, and the per-feature report.

May import: the kernel only (pure computation; the store and the models are the caller's).
"""

PROFILE_FILE = "drift_profile.json"  # a version's reference profile, in its model directory
