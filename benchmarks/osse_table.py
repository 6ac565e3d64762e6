"""Print the headline table of a `healda demo` scores.json (mean ± std over seeds, per-seed steps, wins)."""

from __future__ import annotations

import json
import sys

HEADLINE = ("z500", "t850", "wind250", "q700", "t2m", "msl")


def main(path: str) -> None:
    with open(path) as f:
        doc = json.load(f)
    ind = doc["summary"]["independent"]
    print(f"recipe {doc['recipe']}, seeds {doc['seeds']}, steps "
          + ", ".join(str(v["train_steps"]) for v in doc["per_seed"].values()))
    print("| score | HealDA | climatology | OI | beats clim (every seed) | beats OI (every seed) |")
    print("|---|---|---|---|---|---|")
    for n in HEADLINE:
        cells = [f"{ind[m][n]['mean']:.4g} ± {ind[m][n]['std']:.2g}" for m in ("healda", "climatology", "oi")]
        w = doc["wins"][n]
        print(f"| {n} | " + " | ".join(cells) + f" | {'yes' if w['vs_climatology'] else 'no'} | "
              f"{'yes' if w['vs_oi'] else 'no'} |")
    for seed, v in doc["per_seed"].items():
        print(f"seed {seed}: timings {v['timings']}")


if __name__ == "__main__":
    main(sys.argv[1])
