"""HEALPix grid: the one place where pixel orders are parsed and applied, and the one module that calls healpy
(the nature run's spherical harmonics in ``synth/nature.py`` aside).

Three pixel orders are used in healda:

* ``"padxy"`` — earth2grid ``HEALPIX_PAD_XY`` (``XY(origin=N, clockwise=True)``), the order of every
  tensor inside the model. At level ``L`` (side ``s = 2**L``) the flat index is
  ``i = f*s*s + row*s + col`` with face ``f`` in ``[0, 12)``; pixel 0 of a face is its north corner.
  The order is hierarchical: the parent of ``(f, row, col)`` ``k`` levels up is
  ``(f, row >> k, col >> k)``.
* ``"nest"`` — the standard HEALPix NESTED scheme (healpy, CF-1.13 ``indexing_scheme = "nested"``), used
  on disk for analyses and static fields.
* ``"ring"`` — the HEALPix RING scheme (CF-1.13 ``indexing_scheme = "ring"``), accepted on input files.

Conversion (ARCHITECTURE §3.2, DATA §3): for PAD_XY pixel ``(f, row, col)``,
``nest = healpy.xyf2pix(s, s-1-row, s-1-col, f, nest=True)``. A file's declared order is read by
:func:`declared_order` (spellings: :func:`parse_order`) and applied by :func:`reorder`.

All functions take and return NumPy arrays (int64 pixel ids, float64 degrees) unless stated.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

import healpy
import numpy as np
from jaxtyping import Float, Int

Order = Literal["padxy", "nest", "ring"]
ORDERS: tuple[str, ...] = ("padxy", "nest", "ring")
#: orders in which a pixel's parent is its index shifted (:func:`parent`)
HIERARCHICAL: tuple[str, ...] = ("padxy", "nest")
N_FACES = 12
#: accepted spellings of each order in file attributes (lower case)
_SPELLINGS = {"padxy": "padxy", "pad_xy": "padxy", "healpix_pad_xy": "padxy", "earth2grid_healpix_pad_xy": "padxy",
              "nest": "nest", "nested": "nest", "ring": "ring"}


def level_to_nside(level: int) -> int:
    """HEALPix ``nside = 2**level``."""
    if not 0 <= int(level) <= 29:
        raise ValueError(f"HEALPix level must be in [0, 29], got {level}")
    return 1 << int(level)


def nside_to_level(nside: int) -> int:
    """Inverse of :func:`level_to_nside`; ``nside`` must be a power of two."""
    nside = int(nside)
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"nside must be a positive power of two, got {nside}")
    return nside.bit_length() - 1


def npix(level: int) -> int:
    """Number of pixels ``12 * 4**level``."""
    return N_FACES * level_to_nside(level) ** 2


def level_of_npix(n: int) -> int:
    """Level whose pixel count is ``n``; raises ``ValueError`` if ``n`` is not ``12*4**L``."""
    if n % N_FACES:
        raise ValueError(f"{n} is not a HEALPix pixel count (12*4**level)")
    return nside_to_level(int(round((n // N_FACES) ** 0.5)))


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"pixel order must be one of {ORDERS}, got {order!r}")


def parse_order(text: object) -> Order:
    """The order named by a file attribute: ``nested``/``nest``, ``ring``, ``earth2grid_healpix_pad_xy``/``padxy``
    (any case). Raises ``ValueError`` for anything else."""
    order = _SPELLINGS.get(str(text).strip().lower())
    if order is None:
        raise ValueError(f"HEALPix pixel order {text!r} not recognised (nested, ring or earth2grid_healpix_pad_xy)")
    return order


def declared_order(global_attrs: Mapping[str, object], var_attrs: Mapping[str, Mapping[str, object]],
                   default: Order | None = None) -> Order:
    """The pixel order a HEALPix file declares, from its global attributes and each variable's attributes.

    Declarations: a global ``pixel_order`` (or ``healpix_order``); the ``indexing_scheme`` of the CF grid mapping
    variable (``grid_mapping_name = "healpix"``) or of a ``cell``/``cell_ids`` coordinate. Every declaration
    must name the same order. ``default``: the order of a file that declares none (None: refuse it).

    Raises:
        ValueError: no declaration (and no ``default``), an unrecognised one, or declarations that disagree.
    """
    found: dict[str, Order] = {}
    for key in ("pixel_order", "healpix_order"):
        if key in global_attrs:
            found[key] = parse_order(global_attrs[key])
    for name, attrs in var_attrs.items():
        if "indexing_scheme" in attrs and (attrs.get("grid_mapping_name") == "healpix" or name in ("cell", "cell_ids")):
            found[f"{name}:indexing_scheme"] = parse_order(attrs["indexing_scheme"])
    if not found and default is not None:
        return default
    if not found:
        raise ValueError("HEALPix pixel order undeclared: declare NEST or RING (CF healpix grid mapping, "
                         "indexing_scheme = 'nested' or 'ring') or a global pixel_order = 'earth2grid_healpix_pad_xy'")
    if len(set(found.values())) > 1:
        raise ValueError("HEALPix pixel order declared inconsistently: "
                         + ", ".join(f"{k} = {v}" for k, v in found.items()))
    return next(iter(found.values()))


def _padxy_to_nest_ids(pix: np.ndarray, level: int) -> np.ndarray:
    s = level_to_nside(level)
    f, rem = np.divmod(pix, s * s)
    row, col = np.divmod(rem, s)
    return healpy.xyf2pix(s, s - 1 - row, s - 1 - col, f, nest=True).astype(np.int64)


def _nest_to_padxy_ids(pix: np.ndarray, level: int) -> np.ndarray:
    s = level_to_nside(level)
    x, y, f = healpy.pix2xyf(s, pix, nest=True)
    return (f.astype(np.int64) * s * s + (s - 1 - x.astype(np.int64)) * s + (s - 1 - y.astype(np.int64)))


@lru_cache(maxsize=16)
def _padxy_to_nest_table(level: int) -> np.ndarray:
    table = _padxy_to_nest_ids(np.arange(npix(level), dtype=np.int64), level)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=16)
def _nest_to_padxy_table(level: int) -> np.ndarray:
    table = np.empty(npix(level), dtype=np.int64)
    table[_padxy_to_nest_table(level)] = np.arange(npix(level), dtype=np.int64)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=16)
def _nest_to_ring_table(level: int) -> np.ndarray:
    table = healpy.nest2ring(level_to_nside(level), np.arange(npix(level), dtype=np.int64)).astype(np.int64)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=16)
def _ring_to_nest_table(level: int) -> np.ndarray:
    table = healpy.ring2nest(level_to_nside(level), np.arange(npix(level), dtype=np.int64)).astype(np.int64)
    table.setflags(write=False)
    return table


def _from_nest(order: str, level: int) -> np.ndarray | None:
    """``t[i_nest] = i_order`` (None: the identity)."""
    return {"padxy": _nest_to_padxy_table, "ring": _nest_to_ring_table}.get(order, lambda _: None)(level)


def _to_nest(order: str, level: int) -> np.ndarray | None:
    """``t[i_order] = i_nest`` (None: the identity)."""
    return {"padxy": _padxy_to_nest_table, "ring": _ring_to_nest_table}.get(order, lambda _: None)(level)


@lru_cache(maxsize=32)
def _gather(level: int, src: str, dst: str) -> np.ndarray:
    """``g`` with ``out[..., i_dst] = field[..., g[i_dst]]``: ``i_dst -> i_nest -> i_src``."""
    from_src, to_dst = _from_nest(src, level), _to_nest(dst, level)
    if to_dst is None:
        return from_src
    return to_dst if from_src is None else from_src[to_dst]


def padxy_to_nest(level: int) -> Int[np.ndarray, " npix"]:
    """Permutation ``perm`` with ``perm[i_padxy] = i_nest`` (read-only, cached).

    A field in PAD_XY order is put into NEST order with ``out[perm] = field`` or, equivalently,
    ``field[nest_to_padxy(level)]``.
    """
    return _padxy_to_nest_table(int(level))


def nest_to_padxy(level: int) -> Int[np.ndarray, " npix"]:
    """Permutation ``perm`` with ``perm[i_nest] = i_padxy`` (read-only, cached)."""
    return _nest_to_padxy_table(int(level))


def reorder(field: np.ndarray, level: int, src: Order, dst: Order) -> np.ndarray:
    """Reorder the last axis of ``field`` (length ``npix(level)``) from order ``src`` to ``dst``."""
    _check_order(src)
    _check_order(dst)
    if field.shape[-1] != npix(level):
        raise ValueError(f"last axis has {field.shape[-1]} pixels, level {level} has {npix(level)}")
    if src == dst:
        return field
    return field[..., _gather(int(level), src, dst)]


def ang2pix(
    lon: Float[np.ndarray, " n"], lat: Float[np.ndarray, " n"], level: int, order: Order = "padxy"
) -> Int[np.ndarray, " n"]:
    """Pixel containing each (lon, lat) point, degrees (lon in any range), at ``level`` in ``order``."""
    _check_order(order)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    nest = healpy.ang2pix(level_to_nside(level), lon, lat, nest=True, lonlat=True).astype(np.int64)
    if order == "ring":
        return _nest_to_ring_table(int(level))[nest]
    return nest if order == "nest" else _nest_to_padxy_ids(nest, level)


def pix2ang(
    pix: Int[np.ndarray, " n"], level: int, order: Order = "padxy"
) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    """Pixel-centre (lon in [0, 360), lat) in degrees, float64."""
    _check_order(order)
    pix = np.asarray(pix, dtype=np.int64)
    if order == "ring":
        nest = _ring_to_nest_table(int(level))[pix]
    else:
        nest = pix if order == "nest" else _padxy_to_nest_ids(pix, level)
    lon, lat = healpy.pix2ang(level_to_nside(level), nest, nest=True, lonlat=True)
    return np.mod(lon, 360.0), lat


def pixel_centers(level: int, order: Order = "padxy") -> tuple[Float[np.ndarray, " npix"], Float[np.ndarray, " npix"]]:
    """Centre (lon, lat) in degrees of every pixel of ``level``, in ``order``."""
    return pix2ang(np.arange(npix(level), dtype=np.int64), level, order)


def parent(pix: Int[np.ndarray, " n"], level: int, parent_level: int, order: Order = "padxy") -> Int[np.ndarray, " n"]:
    """Pixel at ``parent_level`` (<= ``level``) containing each pixel of ``level``, same (hierarchical) order."""
    if order not in HIERARCHICAL:
        raise ValueError(f"parent needs a hierarchical pixel order {HIERARCHICAL}, got {order!r}")
    k = int(level) - int(parent_level)
    if k < 0:
        raise ValueError(f"parent_level {parent_level} is finer than level {level}")
    pix = np.asarray(pix, dtype=np.int64)
    if order == "nest":
        return pix >> (2 * k)
    s, sp = level_to_nside(level), level_to_nside(parent_level)
    f, rem = np.divmod(pix, s * s)
    row, col = np.divmod(rem, s)
    return f * sp * sp + (row >> k) * sp + (col >> k)


def interp_weights(lon: Float[np.ndarray, " n"], lat: Float[np.ndarray, " n"], level: int, order: Order = "nest"
                   ) -> tuple[Int[np.ndarray, "4 n"], Float[np.ndarray, "4 n"]]:
    """Pixels (in ``order``) and weights of bilinear interpolation on the sphere at (lon, lat) degrees (healpy's
    4-neighbour scheme): ``(field[..., pix] * w).sum(-2)`` interpolates a field ``(..., npix)`` in ``order``."""
    _check_order(order)
    pix, w = healpy.get_interp_weights(level_to_nside(level), np.asarray(lon, np.float64),
                                       np.asarray(lat, np.float64), nest=True, lonlat=True)
    pix = pix.astype(np.int64)
    if order != "nest":
        pix = _from_nest(order, int(level))[pix]
    return pix, w


def interp(field: Float[np.ndarray, "*lead npix"], lon: Float[np.ndarray, " n"], lat: Float[np.ndarray, " n"],
           order: Order = "nest") -> Float[np.ndarray, "*lead n"]:
    """Bilinear interpolation of ``field`` (last axis: pixels in ``order``) at the points (lon, lat) in degrees."""
    level = level_of_npix(field.shape[-1])
    field = reorder(field, level, order, "nest")
    if field.ndim == 1:
        return healpy.get_interp_val(field, lon, lat, nest=True, lonlat=True)
    return np.stack([interp(f, lon, lat) for f in field])


def ang2vec(lon: Float[np.ndarray, " n"], lat: Float[np.ndarray, " n"]) -> Float[np.ndarray, "n 3"]:
    """Unit vectors of the points (lon, lat) in degrees."""
    return healpy.ang2vec(lon, lat, lonlat=True)


def vec2ang(vec: Float[np.ndarray, "n 3"]) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    """(lon, lat) in degrees of the vectors ``vec`` (any length)."""
    return healpy.vec2ang(vec, lonlat=True)
