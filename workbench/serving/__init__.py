"""Serving: the inference server (`python -m workbench.serving`), request payloads and
model signatures, predictors, OpenAPI, metrics, the prediction log, labels, deployments and
canaries, per-variant stats, and starting a server in the background.

May import: training, jobs, registry, data, store and the kernel.
"""
