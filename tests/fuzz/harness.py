"""The fuzz suite's shared parts: the CLI driven in-process, the oracle every case must satisfy, a memory cap,
and the mutations (byte-level: truncation, bit flips, overwrites; NetCDF-level: dtypes, attributes, sizes,
values).

The oracle: a case ends in exit 0 (for ``pack-obs`` with every row accounted for: read = kept + dropped) or in
exit 3 with exactly one ``error:`` line on stderr (``-q`` leaves nothing else there), nothing on stdout and no
output file; never another exit code, never a traceback, never a temporary file left beside the output, and
never more memory than :data:`MEMORY_HEADROOM` above what the process held before the case.
"""

from __future__ import annotations

import contextlib
import json
import resource
import traceback
from collections.abc import Iterator
from pathlib import Path

import netCDF4
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from healda_cli.main import app

#: how far above its starting data size a case may grow (the inputs are < 2 MB; honest work needs < 300 MB)
MEMORY_HEADROOM = 1 << 30
runner = CliRunner()


def fuzz_settings(max_examples: int) -> settings:
    """Seeded (derandomised), bounded, no example database: the same cases on every run, CI-sized."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _vm_data() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status")


@contextlib.contextmanager
def memory_cap(extra: int = MEMORY_HEADROOM) -> Iterator[None]:
    """Cap the process's data segment (``RLIMIT_DATA``) at its current size + ``extra`` for the block: an
    unbounded allocation fails with MemoryError (a traceback, which the oracle rejects) instead of passing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = _vm_data() + extra
    resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def run_cli(*args: object):
    """``healda -q ARGS`` in-process under the memory cap."""
    with memory_cap():
        return runner.invoke(app, ["-q", *[str(a) for a in args]])


def check_outcome(res, out: Path | None, what: str) -> int:
    """Assert the oracle for one case; return the exit code (0 or 3). ``what`` describes the case."""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(res.exception))
        raise AssertionError(f"{what}: uncaught {type(res.exception).__name__}\n{tb}")
    assert "Traceback" not in res.output, f"{what}: traceback in the output\n{res.output}"
    assert res.exit_code in (0, 3), f"{what}: exit {res.exit_code}\n{res.output}"
    if out is not None:
        stray = [p.name for p in out.parent.iterdir() if ".tmp" in p.name]
        assert not stray, f"{what}: temporary files left: {stray}"
    if res.exit_code == 3:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: stderr is not one error line\n{res.stderr}"
        assert res.stdout == "", f"{what}: stdout on failure: {res.stdout!r}"
        assert out is None or not out.exists(), f"{what}: output written although refused"
    return res.exit_code


def check_pack_accounting(res, out: Path, what: str) -> None:
    """A successful ``pack-obs --json``: the output exists and every row read is kept or dropped for a reason."""
    assert out.exists(), f"{what}: exit 0 without an output file"
    summary = json.loads(res.stdout)
    for row in summary["sensors"]:
        assert row["read"] >= row["kept"] >= 0, f"{what}: {row}"
        assert row["read"] == row["kept"] + sum(row["dropped"].values()), f"{what}: rows unaccounted for: {row}"


# ------------------------------------------------------------------------------------------- byte mutations


@st.composite
def byte_mutations(draw, size: int, head: int = 4096) -> tuple:
    """One byte-level mutation of a ``size``-byte file: ``("truncate", n)``, ``("flip", [(pos, mask)...])`` or
    ``("overwrite", pos, bytes)``; positions favour the first and last ``head`` bytes (where the structure of
    NetCDF/HDF5, safetensors and zip headers, and of parquet footers, lives)."""
    pos = st.one_of(st.integers(0, min(size, head) - 1), st.integers(max(0, size - head), size - 1),
                    st.integers(0, size - 1))
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if kind == "truncate":
        return ("truncate", draw(pos))
    if kind == "flip":
        return ("flip", draw(st.lists(st.tuples(pos, st.integers(1, 255)), min_size=1, max_size=8)))
    return ("overwrite", draw(pos), draw(st.binary(min_size=1, max_size=64)))


def mutate_bytes(data: bytes, m: tuple) -> bytes:
    """Apply a :func:`byte_mutations` result."""
    if m[0] == "truncate":
        return data[: m[1]]
    b = bytearray(data)
    if m[0] == "flip":
        for p, mask in m[1]:
            b[p] ^= mask
        return bytes(b)
    _, p, chunk = m
    b[p:p + len(chunk)] = chunk[: len(b) - p]
    return bytes(b)


# ------------------------------------------------------------------------------------------- NetCDF mutations

DTYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "f4", "f8", "str"]
EXTREMES = [np.nan, np.inf, -np.inf, 1e38, -3.3687953e38, 1e11, 0.0, -1.0, 2.0**63, -(2.0**63), 2.0**31]
ATTRS = ["units", "_FillValue", "missing_value", "flag_values", "flag_meanings", "calendar", "long_name"]
attr_values = st.one_of(
    st.text(max_size=40), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-(2**31), 2**31 - 1), min_size=0, max_size=4).map(lambda v: np.array(v, np.int64)),
    st.sampled_from(["seconds since 9999-12-31", "hours since 1970-01-01", "days since 0001-01-01", "Pa", "hPa",
                     "nanoseconds since 2262-04-12T00:00:00Z", "bogus since never", "amsua conv x y z"]))
SIZES = [0, 1, 2, 7, 2_000_000_000]


def nc_variables(path: Path) -> list[str]:
    """``group/var`` paths of every variable in a NetCDF file."""
    out = []

    def walk(g, prefix):
        out.extend(prefix + n for n in g.variables)
        for name, sub in g.groups.items():
            walk(sub, f"{prefix}{name}/")

    with netCDF4.Dataset(path) as ds:
        walk(ds, "")
    return out


def nc_dimensions(path: Path) -> list[str]:
    with netCDF4.Dataset(path) as ds:
        return list(ds.dimensions)


@st.composite
def nc_mutations(draw, variables: list[str], dims: list[str], global_attrs: list[str]) -> tuple:
    """One structural mutation: a variable's dtype, attribute or values, a dimension's size, a dropped variable,
    or a global attribute."""
    kind = draw(st.sampled_from(["dtype", "attr", "values", "size", "drop", "global"]))
    if kind == "dtype":
        return ("dtype", draw(st.sampled_from(variables)), draw(st.sampled_from(DTYPES)))
    if kind == "attr":
        return ("attr", draw(st.sampled_from(variables)), draw(st.sampled_from(ATTRS)), draw(attr_values))
    if kind == "values":
        return ("values", draw(st.sampled_from(variables)), draw(st.sampled_from(EXTREMES)), draw(st.booleans()))
    if kind == "size":
        return ("size", draw(st.sampled_from(dims)), draw(st.sampled_from(SIZES)))
    if kind == "drop":
        return ("drop", draw(st.sampled_from(variables)))
    return ("global", draw(st.sampled_from(global_attrs or ["title"])), draw(attr_values))


def mutate_nc(src: Path, dst: Path, m: tuple) -> None:
    """Copy NetCDF ``src`` to ``dst`` with the :func:`nc_mutations` ``m`` applied (a fresh NetCDF-4 file)."""
    with netCDF4.Dataset(src) as s, netCDF4.Dataset(dst, "w", format="NETCDF4") as d:
        s.set_auto_maskandscale(False)
        _copy_group(s, d, "", m)


def _set_attr(node, name: str, value) -> None:
    with contextlib.suppress(Exception):  # netCDF refuses some values (e.g. a _FillValue of another type)
        node.setncattr(name, value)


def _copy_group(s, d, prefix: str, m: tuple) -> None:
    for name, dim in s.dimensions.items():
        size = m[2] if m[0] == "size" and m[1] == name and not prefix else len(dim)
        d.createDimension(name, None if dim.isunlimited() and size == len(dim) else size)
    for a in s.ncattrs():
        if not (m[0] == "global" and m[1] == a and not prefix):
            _set_attr(d, a, s.getncattr(a))
    if m[0] == "global" and not prefix:
        _set_attr(d, m[1], m[2])
    for name, v in s.variables.items():
        _copy_variable(v, d, prefix + name, m)
    for name, g in s.groups.items():
        _copy_group(g, d.createGroup(name), f"{prefix}{name}/", m)


def _copy_variable(v, d, path: str, m: tuple) -> None:
    if m[0] == "drop" and m[1] == path:
        return
    v.set_auto_maskandscale(False)
    data = np.asarray(v[...])
    dtype = v.dtype
    if m[0] == "dtype" and m[1] == path:
        dtype = str if m[2] == "str" else np.dtype(m[2])
        with np.errstate(all="ignore"):
            if dtype is str:
                data = data.astype(str).astype(object)
            elif data.dtype.kind in "USO":  # text to numbers: zeros of the new type
                data = np.zeros(data.shape, dtype)
            else:
                data = data.astype(dtype)
    if m[0] == "values" and m[1] == path and dtype is not str and np.dtype(dtype).kind in "fiu":
        with np.errstate(all="ignore"):
            fill = np.array(m[2]).astype(dtype)
        data = data.copy()
        if m[3]:
            data[...] = fill
        elif data.size:
            data.flat[:: max(1, data.size // 3)] = fill
    fill_value = None
    if "_FillValue" in v.ncattrs() and dtype is not str and np.dtype(dtype) == v.dtype:
        fill_value = v.getncattr("_FillValue")
    dims = v.dimensions
    sizes = [_dim_len(d, n) for n in dims]
    kw = {"chunksizes": tuple(min(n or 1, 1 << 16) for n in sizes)} if any(n > 10_000_000 for n in sizes) else {}
    nv = d.createVariable(v.name, dtype, dims, fill_value=fill_value, zlib=bool(kw), **kw)
    for a in v.ncattrs():
        if a != "_FillValue":
            _set_attr(nv, a, v.getncattr(a))
    if m[0] == "attr" and m[1] == path:
        _set_attr(nv, m[2], m[3])
    if data.ndim == 0:
        with contextlib.suppress(Exception):
            nv[...] = data
        return
    sel = tuple(slice(0, min(n, data.shape[i])) for i, n in enumerate(sizes))
    part = data[sel]
    if part.size:
        nv[sel] = part


def _dim_len(group, name: str) -> int:
    """Length of dimension ``name`` as seen from ``group`` (dimensions of enclosing groups are visible)."""
    while group is not None:
        if name in group.dimensions:
            return len(group.dimensions[name])
        group = group.parent
    raise KeyError(name)


# ------------------------------------------------------------------------------------------- parquet mutations

ARROW_TYPES = ["string", "int8", "int64", "float64", "bool", "timestamp[s]", "null"]


@st.composite
def parquet_mutations(draw, columns: list[str]) -> tuple:
    """One table mutation: a column dropped, renamed, cast to another type, or filled with extreme values or
    nulls (all rows or every third)."""
    kind = draw(st.sampled_from(["drop", "rename", "cast", "values"]))
    col = draw(st.sampled_from(columns))
    if kind == "cast":
        return ("cast", col, draw(st.sampled_from(ARROW_TYPES)))
    if kind == "values":
        return ("values", col, draw(st.sampled_from([*EXTREMES, None])), draw(st.booleans()))
    return (kind, col)


def mutate_parquet(src: Path, dst: Path, m: tuple) -> None:
    """Copy parquet ``src`` to ``dst`` with the :func:`parquet_mutations` ``m`` applied."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(src)
    i = t.schema.get_field_index(m[1])
    col = t.column(i)
    if m[0] == "drop":
        t = t.remove_column(i)
    elif m[0] == "rename":
        t = t.rename_columns([n if k != i else n + "_x" for k, n in enumerate(t.column_names)])
    elif m[0] == "cast":
        try:
            new = col.cast(pa.type_for_alias(m[2]) if m[2] != "null" else pa.null(), safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            new = pa.nulls(len(col), pa.type_for_alias(m[2]) if m[2] != "null" else pa.null())
        t = t.set_column(i, m[1], new)
    else:
        values = col.to_pylist()
        for k in range(0, len(values), 1 if m[3] else 3):
            values[k] = m[2]
        try:
            new = pa.array(values, type=col.type, from_pandas=True) if m[2] is not None else pa.array(values, col.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            try:  # the value does not fit the type: the column changes type
                new = pa.array(values, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed strings and numbers: all strings
                new = pa.array([None if v is None else str(v) for v in values])
        t = t.set_column(i, m[1], new)
    pq.write_table(t, dst)
