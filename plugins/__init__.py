"""Built-in plugins, registered through the `workbench.plugins` entry point group."""
