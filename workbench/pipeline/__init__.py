"""The pipeline: validate, train, evaluate, gate against production, register, set aliases.

May import: serving, training, jobs, registry, data, store and the kernel.
"""
