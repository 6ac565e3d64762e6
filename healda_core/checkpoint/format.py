"""The healda checkpoint format: safetensors weights + a JSON header, no pickle.

A healda checkpoint (``*.safetensors``) is a plain safetensors file whose ``__metadata__`` (a str → str map)
holds:

| key | content |
|---|---|
| ``format`` | ``"healda-checkpoint"`` |
| ``format_version`` | ``"1"`` |
| ``healda_version`` | software version that wrote the file |
| ``config`` | JSON: every ``HealDA`` constructor keyword (PhysicsNeMo ``VideoHealDA`` ``args.json`` names) |
| ``conventions`` | JSON: the data conventions the weights were trained with (see :func:`default_conventions`) |
| ``weights_sha256`` | SHA-256 over every tensor (name, dtype, shape, bytes, in sorted name order) |
| ``dtype`` | ``float32`` or ``bfloat16`` (floating tensors; ``map_noise.freqs`` is always float32) |
| ``preset``, ``source``, ``created`` | optional provenance (preset name, source format, ISO time) |

Reading never executes code: safetensors parses a JSON header and raw buffers. The weight hash is checked
on every load, so a flipped byte anywhere in the data section is refused; a header without the hash is
refused too unless verification is skipped explicitly (``verify=False``, ``--skip-hash-check``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from healda_core.errors import CheckpointError

FORMAT_NAME = "healda-checkpoint"
FORMAT_VERSION = "1"
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
FREQS_KEY = "dit.conditioning_embedder.map_noise.freqs"

def era5_stats_sha256() -> str:
    """SHA-256 of the shipped ERA5 output statistics (``era5_13_levels_stats.csv``)."""
    from healda_core import era5_stats

    return era5_stats.sha256()


def obs_stats_sha256() -> str:
    """SHA-256 of the shipped observation normalisation tables (the value pack-obs records)."""
    from healda_core.obs.stats import stats_sha256

    return stats_sha256()


def default_conventions(config: dict[str, Any]) -> dict[str, Any]:
    """Data conventions of the v2-UFS recipe for a model ``config`` (DATA §1–§4).

    These are what PhysicsNeMo ``VideoHealDA`` checkpoints imply: PAD_XY pixels, 50 ``features_v2``
    metadata columns, the UFS/GSI + conv-plevel channel vocabulary, the shipped normalisation tables,
    74 ERA5 outputs on 13 pressure levels, orography + land fraction static inputs, 6-hourly frames.
    """
    meta = int(config.get("obs_meta_dim", 50))
    return {
        "pixel_order": "earth2grid_healpix_pad_xy",
        "level_in": int(config["level_in"]),
        "level_model": int(config["level_model"]),
        "time_length": int(config["time_length"]),
        "metadata_features": "healda_features_v2" if meta == 50 else f"unknown_{meta}",
        "channel_vocabulary": "ufs-gsi+conv-plevel",
        "obs_stats_sha256": obs_stats_sha256(),
        "output_variables": "era5_13_levels_74" if int(config["out_channels"]) == 74
        else f"unknown_{int(config['out_channels'])}",
        "output_stats_sha256": era5_stats_sha256(),
        "static_inputs": "orog,lfrac" if int(config["in_channels"]) == 2 else f"unknown_{config['in_channels']}",
        "frame_step": "PT6H",
    }


@dataclass
class CheckpointHeader:
    """The parsed JSON header of a healda checkpoint."""

    config: dict[str, Any]
    conventions: dict[str, Any]
    weights_sha256: str
    dtype: str = "float32"
    healda_version: str = ""
    format_version: str = FORMAT_VERSION
    extra: dict[str, str] = field(default_factory=dict)  # preset, source, created, ...

    def to_metadata(self) -> dict[str, str]:
        md = {"format": FORMAT_NAME, "format_version": self.format_version, "healda_version": self.healda_version,
              "config": json.dumps(self.config, sort_keys=True), "dtype": self.dtype,
              "conventions": json.dumps(self.conventions, sort_keys=True), "weights_sha256": self.weights_sha256}
        md.update({k: str(v) for k, v in self.extra.items() if v is not None})
        return md

    @classmethod
    def from_metadata(cls, path: object, md: dict[str, str] | None) -> CheckpointHeader:
        if not md or md.get("format") != FORMAT_NAME:
            raise CheckpointError(f"{path}: safetensors file without a healda header (format != {FORMAT_NAME!r}); "
                                  "convert it with `healda convert-ckpt IN --config JSON`")
        if md.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: unsupported healda checkpoint format_version {md.get('format_version')!r} "
                                  f"(this healda reads {FORMAT_VERSION})")
        try:
            config = json.loads(md["config"])
            conventions = json.loads(md.get("conventions", "{}"))
        except (KeyError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: corrupt healda header ({exc})") from None
        if not isinstance(conventions, dict):
            raise CheckpointError(f"{path}: corrupt healda header (conventions is not a JSON object)")
        known = {"format", "format_version", "healda_version", "config", "conventions", "weights_sha256", "dtype"}
        return cls(config=config, conventions=conventions, weights_sha256=md.get("weights_sha256", ""),
                   dtype=md.get("dtype", "float32"), healda_version=md.get("healda_version", ""),
                   format_version=md["format_version"], extra={k: v for k, v in md.items() if k not in known})


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, raw bytes) of every tensor, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(json.dumps(list(t.shape)).encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes())
    return h.hexdigest()


#: safetensors dtype names → the torch dtypes whose names :func:`weights_sha256` hashes
_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def file_weights_sha256(path: str | os.PathLike) -> str:
    """:func:`weights_sha256` of a safetensors file's tensors, hashed from the mapped file (no copy)."""
    import mmap

    header = read_raw_header(path)
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        base = 8 + n
        size = os.fstat(fh.fileno()).st_size
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size > base else None
        try:
            buf = memoryview(mm) if mm is not None else memoryview(b"")
            h = hashlib.sha256()
            for name in sorted(k for k in header if k != "__metadata__"):
                info = header[name]
                dtype = _ST_DTYPES.get(info["dtype"])
                if dtype is None:
                    raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
                lo, hi = (int(x) for x in info["data_offsets"])
                h.update(name.encode())
                h.update(str(dtype).encode())
                h.update(json.dumps(list(info["shape"])).encode())
                if hi > lo:
                    h.update(buf[base + lo:base + hi])
            buf.release()
        finally:
            if mm is not None:
                mm.close()
    return h.hexdigest()


def mapped_to_device(path: str | os.PathLike, device: torch.device, workers: int = 8) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file copied to ``device`` straight from the mapped file (no intermediate CPU
    tensor), ``workers`` copies at a time (a copy releases the GIL; reading the page cache is then spread over
    cores). Same tensors as ``safetensors.torch.load_file(path, device)``."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    header = read_raw_header(path)
    names = [k for k in header if k != "__metadata__"]
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        size = os.fstat(fh.fileno()).st_size
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY) if size > 8 + n else None

    def one(name: str) -> torch.Tensor:
        info = header[name]
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        lo, hi = (int(x) for x in info["data_offsets"])
        shape = [int(d) for d in info["shape"]]
        count = (hi - lo) // dtype.itemsize
        if hi == lo:
            return torch.empty(shape, dtype=dtype, device=device)
        t = torch.frombuffer(mm, dtype=dtype, count=count, offset=8 + n + lo)
        return t.reshape(shape).to(device)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healda-load") as ex:
            return dict(zip(names, ex.map(one, names), strict=True))
    finally:
        if device.type != "cpu" and mm is not None:  # every copy is done (on CPU the tensors keep the map)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            del mm


def verify_file(path: str | os.PathLike, expected: str) -> None:
    """Raise :class:`CheckpointError` unless the file's weights hash to ``expected``."""
    got = file_weights_sha256(path)
    if got != expected:
        raise CheckpointError(f"{path}: weight hash mismatch (header {expected[:12]}…, data {got[:12]}…): the "
                              "file is corrupt")


def verify_in_background(path: str | os.PathLike, expected: str):
    """:func:`verify_file` in a daemon thread; returns a ``Future`` whose ``result()`` raises on a mismatch."""
    import threading
    from concurrent.futures import Future

    fut: Future = Future()

    def run() -> None:
        try:
            verify_file(path, expected)
            fut.set_result(None)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            fut.set_exception(exc)

    threading.Thread(target=run, name="healda-verify", daemon=True).start()
    return fut


def is_safetensors(path: str | os.PathLike) -> bool:
    """True if the file starts like a safetensors file (8-byte little-endian length, then ``{``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 0 < n < SAFETENSORS_MAX_HEADER


def read_raw_header(path: str | os.PathLike) -> dict[str, Any]:
    """The safetensors JSON header (tensor table + ``__metadata__``) without reading any tensor."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n >= SAFETENSORS_MAX_HEADER or 8 + n > size:
                raise CheckpointError(f"{p}: truncated or corrupt safetensors header")
            header = json.loads(fh.read(n))
    except CheckpointError:
        raise
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{p}: unreadable safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{p}: corrupt safetensors header (not a JSON object)")
    end = 0
    for name, entry in header.items():
        if name != "__metadata__":
            end = max(end, _tensor_entry_end(p, name, entry))
    md = header.get("__metadata__")
    if md is not None and not (isinstance(md, dict) and all(isinstance(v, str) for v in md.values())):
        raise CheckpointError(f"{p}: corrupt safetensors header (__metadata__ is not a map of strings)")
    if 8 + n + end != size:
        raise CheckpointError(f"{p}: file size {size} B does not match its header ({8 + n + end} B): truncated or "
                              "corrupt")
    return header


_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


def _tensor_entry_end(p: Path, name: str, entry: Any) -> int:
    """End offset of one tensor's data; refuses entries whose dtype, shape and offsets do not agree."""
    ok = isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and entry["dtype"] in _ITEMSIZE
    shape, offs = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
    ok = ok and isinstance(shape, list) and all(type(d) is int and 0 <= d < 2**40 for d in shape) \
        and isinstance(offs, list) and len(offs) == 2 and all(type(o) is int and 0 <= o for o in offs)
    if ok:
        numel = 1
        for d in shape:
            numel *= d
        ok = offs[1] - offs[0] == numel * _ITEMSIZE[entry["dtype"]]
    if not ok:
        raise CheckpointError(f"{p}: corrupt safetensors header: tensor {name!r} has inconsistent dtype, shape or "
                              "data offsets")
    return offs[1]


def read_header(path: str | os.PathLike) -> CheckpointHeader:
    """Parse the healda header of a safetensors checkpoint (cheap: no tensor is read)."""
    return CheckpointHeader.from_metadata(path, read_raw_header(path).get("__metadata__"))


def save_safetensors(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], header: CheckpointHeader) -> None:
    """Write ``state_dict`` + ``header`` to ``path`` (the caller handles atomicity)."""
    from collections import Counter

    from safetensors.torch import save_file

    cpu = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    ptrs = Counter(v.untyped_storage().data_ptr() for v in cpu.values() if v.numel())
    # safetensors refuses tensors that share storage (tied weights, views): clone those
    tensors = {k: v.clone() if v.numel() and ptrs[v.untyped_storage().data_ptr()] > 1 else v for k, v in cpu.items()}
    save_file(tensors, str(path), metadata=header.to_metadata())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # safetensors creates 0600 files; use the usual permissions


def load_safetensors(path: str | os.PathLike, verify: bool | str = True,
                     device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], CheckpointHeader]:
    """Read a healda checkpoint, its tensors straight to ``device``; refuse a corrupt or truncated file, a hash
    mismatch, or (unless ``verify`` is False) a header without ``weights_sha256``. ``verify="background"``
    leaves the hash itself to the caller (:func:`verify_in_background`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    header = read_header(path)
    if verify and not header.weights_sha256:
        raise CheckpointError(f"{path}: the header has no weights_sha256, so the weights cannot be verified; "
                              "refused (`--skip-hash-check` on convert-ckpt or assimilate, verify=False in Python, loads them "
                              "unverified)")
    if verify is True:
        verify_file(path, header.weights_sha256)
    dev = torch.device(device)
    try:
        sd = load_file(str(path), device=str(dev)) if dev.type == "cpu" else mapped_to_device(path, dev)
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors data ({str(exc).splitlines()[0]})") from None
    return sd, header


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
