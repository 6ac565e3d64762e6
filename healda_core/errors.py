"""Exception hierarchy of healda.

Every error a user can cause derives from :class:`HealdaError`. The CLI maps each class to a
documented exit code and prints its message as one line (no traceback unless ``--debug``).

| class | exit code | meaning |
|---|---|---|
| ``HealdaError`` | 1 | runtime failure |
| ``UsageError`` | 2 | wrong options or arguments (e.g. output exists without ``-O``) |
| ``InputError`` | 3 | bad input data: a file, variable or value that cannot be used |
| ``CheckpointError`` | 3 | a checkpoint that cannot be read, converted or loaded |
| ``AcceleratorError`` | 4 | a GPU or kernel was required but is unavailable |
"""

from __future__ import annotations


class HealdaError(Exception):
    """Base class of every expected healda failure."""

    exit_code = 1


class UsageError(HealdaError):
    """The command line asks for something impossible (exit code 2)."""

    exit_code = 2


class InputError(HealdaError):
    """An input file, variable or value cannot be used (exit code 3).

    Messages name the file, the variable and the problem, e.g.
    ``raw.nc: variable 'lat': missing``.
    """

    exit_code = 3


class CheckpointError(InputError):
    """A checkpoint cannot be read, converted or loaded (exit code 3)."""


class AcceleratorError(HealdaError):
    """An accelerator or kernel was required but is unavailable (exit code 4)."""

    exit_code = 4


def input_error(path: object, variable: str | None, problem: str) -> InputError:
    """Build an :class:`InputError` whose message names file, variable and problem."""
    where = f"{path}" if variable is None else f"{path}: variable '{variable}'"
    return InputError(f"{where}: {problem}")
