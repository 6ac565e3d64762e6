"""One line per kernel and launch setting from ``kernel_lab.py`` output (its ``LAB {json}`` lines), for device logs:

    python3 benchmarks/lab_table.py "$OUT/lab.log"

fwd / fwd+bwd medians (ms), the kernels' device times from ``--profile``, the forward's host time (µs), the
scale-relative errors against the fp32 PyTorch path, and any error the setting raised.
"""

from __future__ import annotations

import json
import sys


def rows(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith("--- "):  # section markers the device scripts write (variants, main's kernel)
            out.append(line.rstrip())
            continue
        if not line.startswith("LAB "):
            continue
        d = json.loads(line[4:])
        for op in ("pa", "film"):
            if op + "_fwd_ms" not in d and op + "_error" not in d:
                continue
            prof = {k[:16]: v for k, v in (d.get(op + "_profile") or []) if k.startswith("_")}
            err = {k: round(v, 4) for k, v in (d.get(op + "_err") or {}).items()}
            out.append(f"{op} {d['override']} {' '.join(d.get('set') or [])} fwd {d.get(op + '_fwd_ms', -1):.3f} fwdbwd "
                       f"{d.get(op + '_fwdbwd_ms', -1):.3f} {prof} host {d.get(op + '_fwd_host_us')} err {err} "
                       f"{d.get(op + '_error', '')[:200]}")
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print("\n".join(rows(f.readlines())))
