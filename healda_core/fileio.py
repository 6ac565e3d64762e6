"""Safe output files: refuse to overwrite without permission, write to a temp file, rename on success.

Usage::

    with atomic_output(path, overwrite=False) as tmp:
        dataset.to_netcdf(tmp)
    # `path` now exists; on any exception (or SIGTERM turned into SystemExit) the temp file is removed.

A writer killed with SIGKILL leaves its ``.NAME.tmp.HOST.PID`` behind; the next :func:`atomic_output` into
the same folder removes every such file whose process on this host is gone.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from healda_core.errors import UsageError

#: netCDF-C and HDF5 (as the wheels of netCDF4 and h5py ship them) are not thread-safe, and netCDF4 releases
#: the GIL: threads that may run at the same time hold this lock around every call into either library
HDF5_LOCK = threading.RLock()

#: temporary files of the :func:`atomic_output` blocks open in this process (removed by :func:`terminate`)
_LIVE_TEMPS: set[Path] = set()


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Fail with :class:`UsageError` (exit 2) if ``path`` exists and ``overwrite`` is False."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise UsageError(f"{p}: output exists; add -O/--overwrite to replace it")
    if p.exists() and p.is_dir():
        raise UsageError(f"{p}: output is a directory")
    return p


_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"
#: ``.NAME.tmp.HOST.PID`` (and the older ``.NAME.tmp.PID``): the temporary files of :func:`atomic_output`
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp(?:\.(?P<host>[A-Za-z0-9_-]+))?\.(?P<pid>\d+)$")


def temp_path(final: Path) -> Path:
    """The temporary path of this process for output ``final``: ``.NAME.tmp.HOST.PID`` beside it."""
    return final.with_name(f".{final.name}.tmp.{_HOST}.{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's live process (or an absurd number): leave it alone
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers on this host left in ``folder``; return them.

    A temp belongs to a dead writer when its host is this host and its process id is no longer running.
    Temps of live processes and of other hosts (shared file systems) are kept.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP.match(e.name)
        if m is None or (m["host"] or _HOST) != _HOST or _alive(int(m["pid"])) or not e.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(e.path)
            removed.append(Path(e.path))
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``.

    The temporary file is removed on any exception (SIGTERM arrives as ``SystemExit``). A process killed
    outright (SIGKILL, power loss) cannot remove it; the next write into the same folder does
    (:func:`remove_stale_temps`).
    """
    final = check_writable(path, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final.parent)
    tmp = temp_path(final)
    _LIVE_TEMPS.add(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{final}: nothing was written")
        check_writable(final, overwrite)  # re-check: another process may have created it meanwhile
        os.replace(tmp, final)
    finally:
        _LIVE_TEMPS.discard(tmp)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def terminate(code: int = 143, grace_s: float = 5.0) -> None:
    """Handle a termination signal: raise ``SystemExit(code)`` so writers unwind and remove their temporaries.

    An exception raised inside a signal handler can be swallowed by C extension code that is running at that
    moment (netCDF4 does so at times), and the process would then carry on. So a daemon thread also waits
    ``grace_s`` seconds and, if the process is still alive, removes every open temporary file and exits with
    ``code`` at once.
    """

    def hard_exit() -> None:
        for tmp in list(_LIVE_TEMPS):
            with contextlib.suppress(OSError):
                tmp.unlink()
        os._exit(code)

    timer = threading.Timer(grace_s, hard_exit)
    timer.daemon = True
    timer.start()
    raise SystemExit(code)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, replacing it (for files a command owns, such as run metadata)."""
    with atomic_output(path, overwrite=True) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def history_entry(argv: list[str] | None = None) -> str:
    """``"<ISO-8601 UTC>: healda <args>"`` for the CF ``history`` attribute."""
    argv = sys.argv if argv is None else argv
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prog = "healda" if not argv else Path(argv[0]).name
    return f"{now}: {prog} {shlex.join(argv[1:])}".rstrip()


def open_netcdf(path: str | os.PathLike):
    """Open ``path`` read-only; a missing, empty, truncated or non-NetCDF file, a directory, or a file claiming
    more data than it can hold (:func:`check_claimed_sizes`) raises :class:`InputError` (exit 3) naming it."""
    import netCDF4

    from healda_core.errors import input_error

    p = Path(path)
    if not p.exists():
        raise input_error(p, None, "no such file")
    if p.is_dir():
        raise input_error(p, None, "is a directory, not a NetCDF file")
    if p.stat().st_size == 0:
        raise input_error(p, None, "empty file (0 bytes)")
    try:
        ds = netCDF4.Dataset(path)
    except (OSError, RuntimeError, ValueError) as exc:
        raise input_error(path, None, f"not a NetCDF file, or truncated ({exc})") from None
    try:
        with reading_netcdf(path):
            check_claimed_sizes(ds, path)
    except BaseException:
        ds.close()
        raise
    return ds


@contextlib.contextmanager
def reading_netcdf(path: object, name: str | None = None) -> Iterator[None]:
    """Turn a netCDF/HDF5 failure inside the block (a damaged chunk, attribute or header read lazily) into an
    :class:`InputError` naming ``path`` (and variable ``name``); InputErrors pass through unchanged."""
    from healda_core.errors import InputError, input_error

    try:
        yield
    except InputError:
        raise
    except (RuntimeError, OSError, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError,
            UnicodeDecodeError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise input_error(path, name, f"cannot be read: corrupt or truncated file ({detail})") from None


#: the most a NetCDF-4 file's data can expand on reading (deflate's limit is about 1032:1; margin for others)
MAX_EXPANSION = 4096
#: the share of the memory available at open time that one file's data may claim
MEMORY_SHARE = 0.5


def _variables(group) -> Iterator:
    yield from group.variables.values()
    for g in group.groups.values():
        yield from _variables(g)


def claimed_bytes(ds) -> tuple[int, str, int]:
    """Bytes that reading every variable of ``ds`` would allocate, the largest variable's name and size."""
    import numpy as np

    total, big, big_n = 0, "", 0
    for v in _variables(ds):
        n = 1
        for d in v.shape:
            n *= int(d)
        item = np.dtype(v.dtype).itemsize if not isinstance(v.dtype, type) else 8  # vlen strings: a pointer each
        total += n * item
        if n * item > big_n:
            big, big_n = v.name, n * item
    return total, big, big_n


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; physical memory where that is unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_claimed_sizes(ds, path: object) -> None:
    """Refuse a file whose dimensions claim more data than the file can hold or than memory can take.

    The claim (elements × item size over every variable) is checked against ``MAX_EXPANSION`` × the file size
    (a header claiming 2e9 rows in a 99 KB file is corrupt or hostile: the rows are not there) and against
    ``MEMORY_SHARE`` of the available memory, before anything is read.
    """
    from healda_core.errors import input_error

    total, big, big_n = claimed_bytes(ds)
    size = Path(ds.filepath()).stat().st_size if hasattr(ds, "filepath") else 0
    if size and total > MAX_EXPANSION * size:
        raise input_error(path, big, f"the dimensions claim {total / 1e9:.3g} GB of data ({big}: {big_n / 1e9:.3g} GB) "
                          f"in a {size / 1e3:.0f} KB file; the data cannot be there (corrupt or hostile header)")
    check_memory_budget(path, big, total, "the dimensions claim")


def check_memory_budget(path: object, variable: str | None, claimed: int, what: str) -> None:
    """Refuse reading ``claimed`` bytes when that exceeds ``MEMORY_SHARE`` of the available memory."""
    from healda_core.errors import input_error

    budget = int(MEMORY_SHARE * available_memory())
    if claimed > budget:
        raise input_error(path, variable, f"{what} {claimed / 1e9:.3g} GB of data, more than this machine's memory "
                          f"budget ({budget / 1e9:.3g} GB, half of the available memory); split the file")
