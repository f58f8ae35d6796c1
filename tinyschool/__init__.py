"""tinyschool: the composition root (CLI, recipe loading and validation, stage runner)."""
__version__ = "0.1.0"
