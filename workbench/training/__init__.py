"""Training: the training job (`python -m workbench.training`, run by a runner) and the
holdout metrics.

May import: jobs.events (the job protocol), drift (the profile saved with a model), data,
store and the kernel.
"""

from workbench.training.progress import report_progress

__all__ = ["report_progress"]
