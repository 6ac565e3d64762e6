"""Reading ``torch.save`` files without unpickling: ``weights_only=True``, every failure a :class:`CheckpointError`.

Two container layouts exist: the zip layout (torch ≥ 1.6, memory-mapped on read) and the legacy layout (a
pickle stream starting with the protocol opcode ``0x80``, read without ``mmap``, which it does not support).
Anything else is not a torch file and is reported as an unrecognised format, not as a broken torch file.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import torch

from healda_core.errors import CheckpointError


def looks_like_legacy_torch(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) starts a pickle stream (protocol 2–5): legacy torch.save."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def torch_load(source: str | os.PathLike | io.BytesIO, where: object) -> Any:
    """``torch.load(source, weights_only=True)`` on the CPU; a refusal or failure raises :class:`CheckpointError`.

    Zip-layout files on disk are memory-mapped; legacy (non-zip) files and in-memory buffers are read whole.
    """
    try:
        mmap = isinstance(source, (str, os.PathLike)) and zipfile.is_zipfile(source)
        return torch.load(source, map_location="cpu", weights_only=True, **({"mmap": True} if mmap else {}))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a refused checkpoint
        raise CheckpointError(f"{where}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """A one-line reason for a failed weights-only load (torch wraps every unpickler error in a long preamble)."""
    text = str(exc).strip()
    detail = text.split("WeightsUnpickler error:", 1)[-1].strip() if "WeightsUnpickler error:" in text else text
    line = (detail.splitlines() or [type(exc).__name__])[0].strip()[:200]
    if "GLOBAL" in text or "Unsupported global" in text:
        return ("refused: the file needs arbitrary pickled objects, which healda never loads (torch.load "
                f"weights_only=True: {line})")
    if "Unsupported operand" in text:
        return f"refused: not a weights-only torch file (torch.load weights_only=True: {line})"
    return f"unreadable torch file ({line})"
