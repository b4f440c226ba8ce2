"""Workbench core: the headless domain and services. Never imports Textual, screens or plugins."""

__version__ = "0.1.0"
