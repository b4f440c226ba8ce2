"""Monitoring: a project's drift and performance check over the prediction log, and the
monitor that retrains on drift or decay and starts the candidate as a canary.

May import: pipeline and every layer below it.
"""
