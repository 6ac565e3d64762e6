"""Safe output files: refuse to overwrite without permission, write to a temp file, rename on success.

Usage::

    with atomic_output(path, overwrite=False) as tmp:
        dataset.to_netcdf(tmp)
    # `path` now exists; on any exception (or SIGTERM turned into SystemExit) the temp file is removed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from healda_core.errors import UsageError


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Fail with :class:`UsageError` (exit 2) if ``path`` exists and ``overwrite`` is False."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise UsageError(f"{p}: output exists; add -O/--overwrite to replace it")
    if p.exists() and p.is_dir():
        raise UsageError(f"{p}: output is a directory")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``."""
    final = check_writable(path, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp.{os.getpid()}")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{final}: nothing was written")
        check_writable(final, overwrite)  # re-check: another process may have created it meanwhile
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def history_entry(argv: list[str] | None = None) -> str:
    """``"<ISO-8601 UTC>: healda <args>"`` for the CF ``history`` attribute."""
    argv = sys.argv if argv is None else argv
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prog = "healda" if not argv else Path(argv[0]).name
    return f"{now}: {prog} {shlex.join(argv[1:])}".rstrip()


def prepend_history(old: str | None, entry: str) -> str:
    """Newest-first ``history`` (NCO/CDO convention)."""
    return entry if not old else f"{entry}\n{old}"


def open_netcdf(path: str | os.PathLike):
    """Open ``path`` read-only; an unreadable file raises :class:`InputError` (exit 3) naming it."""
    import netCDF4

    from healda_core.errors import input_error

    try:
        return netCDF4.Dataset(path)
    except OSError as exc:
        raise input_error(path, None, f"cannot open as NetCDF ({exc})") from None
