"""User-facing errors: one line that names the key, the bad value and the fix."""

from __future__ import annotations


class ClonesimError(Exception):
    """An error caused by the user's input; the CLI prints it as one line."""


class ConfigError(ClonesimError):
    """A config value is wrong. ``key`` is its dotted path, e.g. ``tumor.lethal_cells``."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)
