"""Lineage: the chain from a data snapshot through the job, the run, the model version, its
alias moves and approvals, its deployments and canaries, to the drift checks and the
retraining they triggered, and back from a prediction's request id to the model that answered.

May import: every layer below it (demo and down); only reads.
"""
