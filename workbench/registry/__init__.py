"""The model registry: versions, aliases, promote and rollback, alias moves under one
lock, the alias history, and the audit log.

May import: store and the kernel.
"""
