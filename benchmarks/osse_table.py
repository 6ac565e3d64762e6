"""Print the headline table of one or more `healda demo` scores.json files (seeds merged: mean ± std over
all their seeds, wins over every seed, per-seed values, steps and timings).

    python benchmarks/osse_table.py /tmp/osse-gpu/scores.json [more/scores.json ...]
"""

from __future__ import annotations

import json
import sys

from healda_core.synth.demo import summarise

HEADLINE = ("z500", "t850", "wind250", "q700", "t2m", "msl")
METHODS = ("healda", "climatology", "oi")


def main(paths: list[str]) -> None:
    per_seed, recipes = {}, set()
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        recipes.add(doc["recipe"] if isinstance(doc["recipe"], str) else json.dumps(doc["recipe"], sort_keys=True))
        per_seed.update({int(k): v for k, v in doc["per_seed"].items()})
    if len(recipes) > 1:
        sys.exit("error: the files were made with different recipes")
    summary, wins = summarise(per_seed)
    ind = summary["independent"]
    seeds = sorted(per_seed)
    print(f"seeds {seeds}, steps " + ", ".join(str(per_seed[s]["train_steps"]) for s in seeds))
    print("| score | HealDA | climatology | OI | HealDA per seed | beats clim (every seed) | beats OI (every seed) |")
    print("|---|---|---|---|---|---|---|")
    for n in HEADLINE:
        cells = [f"{ind[m][n]['mean']:.4g} ± {ind[m][n]['std']:.2g}" for m in METHODS]
        count = {b: sum(per_seed[s]["scores"]["independent"]["healda"][n]
                        < per_seed[s]["scores"]["independent"][b][n] for s in seeds) for b in METHODS[1:]}
        verdict = [f"{'yes' if wins[n]['vs_' + b] else '**no**'} ({count[b]}/{len(seeds)})" for b in METHODS[1:]]
        print(f"| {n} | " + " | ".join(cells) + " | " + ", ".join(f"{v:.4g}" for v in ind["healda"][n]["values"])
              + " | " + " | ".join(verdict) + " |")
    for s in seeds:
        sc = per_seed[s]["scores"]["independent"]
        print(f"seed {s}: " + "  ".join(f"{n} " + " / ".join(f"{sc[m][n]:.4g}" for m in METHODS) for n in HEADLINE)
              + f"  timings {per_seed[s]['timings']}")


if __name__ == "__main__":
    main(sys.argv[1:])
