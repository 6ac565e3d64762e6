"""Read checkpoints from anywhere, validate them against the model, write safetensors or ``.mdlus``.

Accepted inputs (sniffed from the bytes, not the suffix):

* healda safetensors (:mod:`healda_core.checkpoint.format`);
* PhysicsNeMo ``.mdlus``: a zip (or legacy tar) of ``model.pt`` + ``args.json`` + ``metadata.json``;
* NVlabs HealDA ``.checkpoint``: a zip of ``net_state.pth`` (+ ``model.json``/``loop.json``/``metadata.json``);
  the keys must be ``VideoHealDA`` keys, and the configuration comes from ``--config`` unless one of the JSON
  members holds ``VideoHealDA`` keyword arguments;
* a plain ``torch.save``\\ d state_dict (``.pt``/``.pth``; also ``{"state_dict"|"model"|"net"|...: sd}``), with
  the configuration from ``--config``.

Every ``torch.load`` uses ``weights_only=True``: a file that needs arbitrary pickled objects is refused.
``module.`` (DDP) and ``_orig_mod.`` (torch.compile) key prefixes are stripped.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import zipfile
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from healda_core.checkpoint.format import (
    FREQS_KEY,
    CheckpointHeader,
    default_conventions,
    is_safetensors,
    load_safetensors,
    now_iso,
    read_raw_header,
    save_safetensors,
    verify_in_background,
    weights_sha256,
)
from healda_core.checkpoint.state_dict import (  # noqa: F401 - re-exported: convert is the public module
    cast_state_dict,
    expected_freqs,
    resolve_config,
    short_list,
    strip_prefixes,
    validate_state_dict,
)
from healda_core.checkpoint.torchfile import looks_like_legacy_torch, torch_load
from healda_core.errors import CheckpointError
from healda_core.fileio import atomic_output

PHYSICSNEMO_NAME = "VideoHealDA"
PHYSICSNEMO_MODULE = "physicsnemo.experimental.models.healda.video_healda"
PHYSICSNEMO_METADATA = {"physicsnemo_version": "2.2.2", "mdlus_file_version": "0.1.0"}
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "net_state", "ema", "module")
CONFIG_HINT = "give the configuration when converting it: `healda convert-ckpt IN --config JSON`"
NO_CONFIG = f"a plain state_dict carries no model configuration; {CONFIG_HINT}"
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


@dataclass
class LoadedCheckpoint:
    """A checkpoint read into memory: state_dict (validated), full config, conventions, provenance."""

    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    conventions: dict[str, Any]
    source_format: str
    path: str
    extra: dict[str, str] = field(default_factory=dict)
    known_sha256: str | None = None  # weights hash already verified on read (safetensors)
    hash_verified: bool = False  # True when a stored weights_sha256 was checked against the data on read (or,
    # with verify="background", is being checked: see wait_verified)
    verification: Future | None = None  # a background hash check still running (read_checkpoint verify="background")

    def wait_verified(self) -> None:
        """Wait for a background hash check; raise :class:`CheckpointError` if the weights are corrupt."""
        if self.verification is not None:
            self.verification.result()

    def sha256(self) -> str:
        """:func:`weights_sha256` of the state_dict (the verified header value when unchanged)."""
        return self.known_sha256 or weights_sha256(self.state_dict)

    @property
    def n_parameters(self) -> int:
        return sum(v.numel() for k, v in self.state_dict.items() if k != FREQS_KEY)

    @property
    def dtype(self) -> str:
        dts = {v.dtype for k, v in self.state_dict.items() if k != FREQS_KEY and v.is_floating_point()}
        return "bfloat16" if dts == {torch.bfloat16} else "float32" if dts <= {torch.float32} else "mixed"

    def header(self) -> CheckpointHeader:
        from healda_core import __version__

        return CheckpointHeader(config=self.config, conventions=self.conventions,
                                weights_sha256=weights_sha256(self.state_dict), dtype=self.dtype,
                                healda_version=__version__, extra=self.extra)


# --------------------------------------------------------------------------------------------- config


def load_config_arg(value: str | None) -> dict[str, Any] | None:
    """``--config``: a JSON file (``args.json`` with ``__args__`` is accepted) or an inline JSON object."""
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        text = value
    else:
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise CheckpointError(f"--config {value}: cannot read ({exc.strerror or exc})") from None
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"--config: neither a readable JSON file nor inline JSON ({exc})") from None
    if isinstance(cfg, dict) and "__args__" in cfg:
        cfg = cfg["__args__"]
    if isinstance(cfg, dict) and isinstance(cfg.get("config"), dict):
        cfg = cfg["config"]
    return cfg


# --------------------------------------------------------------------------------------------- state_dict


# --------------------------------------------------------------------------------------------- readers


def _as_state_dict(obj: Any, where: object) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if key in obj:
                return _as_state_dict(obj[key], f"{where}[{key!r}]")
    raise CheckpointError(f"{where}: no state_dict found (a dict of tensors, or one under "
                          f"{', '.join(repr(k) for k in _NESTED_KEYS)})")


def _find_config(obj: Any) -> dict[str, Any] | None:
    """A dict of ``VideoHealDA`` keyword arguments anywhere inside a JSON document (NVlabs files)."""
    from healda_core.model.healda import default_config

    keys = set(default_config())
    if isinstance(obj, dict):
        if "__args__" in obj and isinstance(obj["__args__"], dict):
            return obj["__args__"]
        if len(keys & set(obj)) >= 3 and set(obj) <= keys:
            return obj
        for v in obj.values():
            found = _find_config(v)
            if found is not None:
                return found
    elif isinstance(obj, str) and obj.lstrip().startswith("{"):
        try:
            return _find_config(json.loads(obj))
        except json.JSONDecodeError:
            return None
    return None


def _member(names: list[str], base: str) -> str | None:
    hits = [n for n in names if n == base or n.endswith("/" + base)]
    return min(hits, key=len) if hits else None


def _read_zip(path: Path, config: dict | None) -> tuple[dict, dict | None, str, dict]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # ValueError: a member name not UTF-8
        raise CheckpointError(f"{path}: corrupt or truncated zip ({exc})") from None
    with zf:
        names = zf.namelist()
        _check_expansion(path, sum(i.file_size for i in zf.infolist()))
        try:
            bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise CheckpointError(f"{path}: corrupt zip ({exc})") from None
        if bad is not None:
            raise CheckpointError(f"{path}: corrupt zip: CRC check failed for member {bad!r}")
        model_pt, args_json, net_state = _member(names, "model.pt"), _member(names, "args.json"), \
            _member(names, "net_state.pth")
        with tempfile.TemporaryDirectory(prefix="healda-ckpt-") as tmp:
            if model_pt and args_json:
                args = _json_member(zf, args_json, path)
                name = args.get("__name__")
                if name not in (PHYSICSNEMO_NAME, "HealDA"):
                    raise CheckpointError(f"{path}: .mdlus holds a {name!r} model, not {PHYSICSNEMO_NAME}")
                cfg = args.get("__args__")
                if not isinstance(cfg, dict):
                    raise CheckpointError(f"{path}: args.json has no '__args__' object")
                sd = torch_load(zf.extract(model_pt, tmp), f"{path}:{model_pt}")
                meta = _json_member(zf, _member(names, "metadata.json"), path) if _member(names, "metadata.json") \
                    else {}
                extra = {"source_physicsnemo_version": str(meta.get("physicsnemo_version", ""))}
                return _as_state_dict(sd, f"{path}:{model_pt}"), config or cfg, "physicsnemo-mdlus", extra
            if net_state:
                cfg = config
                if cfg is None:
                    for member in ("model.json", "loop.json", "args.json", "config.json"):
                        m = _member(names, member)
                        if m:
                            cfg = _find_config(_json_member(zf, m, path))
                            if cfg is not None:
                                break
                if cfg is None:
                    raise CheckpointError(f"{path}: NVlabs checkpoint without VideoHealDA keyword arguments in "
                                          f"model.json/loop.json; {CONFIG_HINT}")
                sd = torch_load(zf.extract(net_state, tmp), f"{path}:{net_state}")
                return _as_state_dict(sd, f"{path}:{net_state}"), cfg, "nvlabs-checkpoint", {}
            if any(n.endswith("data.pkl") for n in names):  # a torch.save file (zip based)
                if config is None:
                    raise CheckpointError(f"{path}: {NO_CONFIG}")
                return _as_state_dict(torch_load(path, path), path), config, "torch-state-dict", {}
    raise CheckpointError(f"{path}: zip holds neither model.pt+args.json (.mdlus) nor net_state.pth (NVlabs): "
                          f"{short_list(names, 6)}")


def _json_member(zf: zipfile.ZipFile, name: str, path: Path) -> dict:
    try:
        obj = json.loads(zf.read(name))
    except (ValueError, zipfile.BadZipFile, OSError, zlib.error) as exc:  # ValueError: bad JSON or UTF-8
        raise CheckpointError(f"{path}: member {name!r} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: member {name!r} is not a JSON object")
    return obj


def _check_expansion(path: Path, claimed: int) -> None:
    """Refuse an archive whose members claim more bytes than compression allows or memory can take."""
    from healda_core.fileio import MAX_EXPANSION, MEMORY_SHARE, available_memory

    size = path.stat().st_size
    if claimed > MAX_EXPANSION * size or claimed > MEMORY_SHARE * available_memory():
        raise CheckpointError(f"{path}: the archive's members claim {claimed / 1e9:.3g} GB in a {size / 1e6:.3g} MB "
                              "file, beyond what compression allows or memory can take (corrupt or hostile)")


def _read_tar(path: Path, config: dict | None) -> tuple[dict, dict | None, str, dict]:
    try:
        with tarfile.open(path) as tf:
            members = {Path(m.name).name: m for m in tf.getmembers() if m.isfile()}
            if "model.pt" not in members or "args.json" not in members:
                raise CheckpointError(f"{path}: tar archive without model.pt + args.json (not a .mdlus)")
            _check_expansion(path, members["model.pt"].size + members["args.json"].size)
            args = json.loads(tf.extractfile(members["args.json"]).read())
            blob = io.BytesIO(tf.extractfile(members["model.pt"]).read())
    except CheckpointError:
        raise
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as exc:  # ValueError: bad JSON or UTF-8
        raise CheckpointError(f"{path}: corrupt or truncated tar .mdlus ({exc})") from None
    if not isinstance(args, dict):
        raise CheckpointError(f"{path}: args.json is not a JSON object")
    if args.get("__name__") not in (PHYSICSNEMO_NAME, "HealDA"):
        raise CheckpointError(f"{path}: .mdlus holds a {args.get('__name__')!r} model, not {PHYSICSNEMO_NAME}")
    sd = _as_state_dict(torch_load(blob, f"{path}:model.pt"), f"{path}:model.pt")
    return sd, config or args.get("__args__"), "physicsnemo-mdlus-tar", {}


def _is_tar(p: Path) -> bool:
    try:
        return tarfile.is_tarfile(p)
    except (OSError, tarfile.TarError):
        return False


def read_checkpoint(path: str | os.PathLike, config: dict[str, Any] | None = None,
                    verify: bool | str = True, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Read any supported checkpoint, validate it, and return it in canonical (model) key order.

    ``config`` overrides the configuration stored in the file (required for plain state_dicts). The
    configuration is checked (:mod:`~healda_core.model.config_rules`) and compared with the tensors before any
    model is built; a healda safetensors header is checked before its tensors are read. ``verify=False`` skips
    the weight hash (a missing ``weights_sha256`` is otherwise refused); ``LoadedCheckpoint.hash_verified``
    records which happened. ``verify="background"`` checks the hash of a safetensors file in a thread (the
    data are hashed straight from the mapped file): call :meth:`LoadedCheckpoint.wait_verified` before
    trusting anything computed with the weights. ``device``: where a safetensors file's tensors are read to
    (other formats load on the CPU).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty file")
    extra: dict[str, str] = {}
    conventions = None
    verified_sha, pending = None, None
    if is_safetensors(p):
        table = read_raw_header(p)
        header = CheckpointHeader.from_metadata(p, table.get("__metadata__"))
        cfg = resolve_config(config or header.config, p,
                             {k: tuple(v["shape"]) for k, v in table.items() if k != "__metadata__"})
        sd, header = load_safetensors(p, verify=verify, device=device)
        fmt, conventions = "healda-safetensors", header.conventions
        extra = dict(header.extra)
        verified_sha = header.weights_sha256 if verify else None
        if verify == "background":
            pending = verify_in_background(p, header.weights_sha256)
    else:
        sd, cfg, fmt, extra = _read_torch_container(p, config)
        if cfg is None:
            raise CheckpointError(f"{p}: no model configuration found; {CONFIG_HINT}")
        cfg = resolve_config(cfg, p, {k: tuple(v.shape) for k, v in strip_prefixes(sd).items()
                                      if isinstance(v, torch.Tensor)})
    sd = validate_state_dict(strip_prefixes(sd), cfg, p)
    conv = default_conventions(cfg)
    if conventions:
        conv.update({k: v for k, v in conventions.items()})
        for k in ("level_in", "level_model", "time_length"):
            conv[k] = int(cfg[k])  # the model configuration is authoritative for these
    extra.setdefault("source", fmt)
    ck = LoadedCheckpoint(state_dict=sd, config=cfg, conventions=conv, source_format=fmt, path=str(p), extra=extra,
                          hash_verified=verified_sha is not None)
    ck.known_sha256, ck.verification = verified_sha, pending
    return ck


def _read_torch_container(p: Path, config: dict | None) -> tuple[dict, dict | None, str, dict]:
    """A zip (.mdlus, NVlabs, torch.save), tar (.mdlus) or legacy torch.save file: state_dict, config, format."""
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"PK":
        if not zipfile.is_zipfile(p):
            raise CheckpointError(f"{p}: truncated or corrupt zip archive (no central directory)")
        return _read_zip(p, config)
    if _is_tar(p):
        return _read_tar(p, config)
    if not looks_like_legacy_torch(magic):
        raise CheckpointError(f"{p}: not a checkpoint: the content is neither safetensors, a zip (.mdlus, NVlabs "
                              ".checkpoint, torch.save), a tar .mdlus nor a legacy torch.save file")
    obj = torch_load(p, p)
    if config is None:
        raise CheckpointError(f"{p}: {NO_CONFIG}")
    return _as_state_dict(obj, p), config, "torch-state-dict", {}


# --------------------------------------------------------------------------------------------- writers


def write_safetensors(ckpt: LoadedCheckpoint, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``ckpt`` as a healda safetensors checkpoint (atomic)."""
    ckpt.extra.setdefault("created", now_iso())
    header = ckpt.header()
    with atomic_output(out, overwrite) as tmp:
        save_safetensors(tmp, ckpt.state_dict, header)
    return Path(out)


def write_mdlus(ckpt: LoadedCheckpoint, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``ckpt`` as a PhysicsNeMo ``.mdlus`` zip (``model.pt`` + ``args.json`` + ``metadata.json``)."""
    args = {"__name__": PHYSICSNEMO_NAME, "__module__": PHYSICSNEMO_MODULE, "__args__": ckpt.config}
    with atomic_output(out, overwrite) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open("model.pt", "w", force_zip64=True) as fh:
            torch.save({k: v.contiguous() for k, v in ckpt.state_dict.items()}, fh)
        zf.writestr("args.json", json.dumps(args))
        zf.writestr("metadata.json", json.dumps(PHYSICSNEMO_METADATA))
    return Path(out)


def info_dict(ckpt: LoadedCheckpoint) -> dict[str, Any]:
    """What ``convert-ckpt --info`` reports."""
    return {"path": ckpt.path, "format": ckpt.source_format, "parameters": ckpt.n_parameters, "dtype": ckpt.dtype,
            "tensors": len(ckpt.state_dict), "weights_sha256": ckpt.sha256(),
            "config": ckpt.config, "conventions": ckpt.conventions,
            **{k: v for k, v in ckpt.extra.items() if k in ("preset", "source", "created", "healda_version")}}
