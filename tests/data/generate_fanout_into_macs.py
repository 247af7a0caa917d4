"""Generate fanout-into-MACs reference cases with timeloop-model v3.0.3 (a development tool, not a test).

Writes ``tests/data/fanout_into_macs.jsonl``: the 16 cases of
``/work/shared/timeloop-reference/fanout-into-macs.jsonl`` as they are, then ``--count`` random tiny
cases whose last storage level fans out straight into the MACs: DRAM -> (spatial over 1 or 2
buffers) -> Buf -> MACs on a 1D or 2D mesh (up to 3 x 2 MACs per buffer), random layers with
strides and windows, random factor splits, permutations, spatial orders and Buf bypasses. About
half of them are drawn among mappings where the model predicts link transfers (so that multicast,
reduction and sliding hand-overs are all exercised). Each case's ``timeloop`` results come from
``tl_eval.py`` (``/work/shared/timeloop-oracle``) run on the case line.

Run (needs the Timeloop build; the test suite does not)::

    TIMELOOP_ROOT=/opt/timeloop-v3.0.3 python tests/data/generate_fanout_into_macs.py --count 80 --seed 1
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from pathlib import Path

ORACLE = ["/opt/oracle-venv/bin/python", "/work/shared/timeloop-oracle/tl_eval.py", "-"]
SHARED = Path("/work/shared/timeloop-reference/fanout-into-macs.jsonl")
OUT = Path(__file__).resolve().parent / "fanout_into_macs.jsonl"
DIMS = "NKCPQRS"


def _primes(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def random_case(rng: random.Random, index: int) -> dict:
    bufs = rng.choice([1, 1, 1, 2])
    fx, fy = rng.choice([(2, 1), (3, 1), (4, 1), (1, 2), (2, 2), (3, 2), (2, 3)])
    levels = [{"name": "DRAM", "technology": "DRAM", "word_bits": 8, "block_size": 1,
               "read_energy": 100.0, "write_energy": 100.0},
              {"name": "Buf", "technology": "SRAM", "size": 4096, "word_bits": 8, "block_size": rng.choice([1, 2]),
               "instances": bufs, "meshX": bufs, "read_energy": 1.0, "write_energy": 1.5}]
    arch = {"name": f"fanout-to-mac-{bufs}x{fx}x{fy}", "levels": levels,
            "mac": {"name": "MACC", "instances": bufs * fx * fy, "meshX": bufs * fx, "word_bits": 8, "energy": 1.0}}
    layer = {"N": rng.choice([1, 1, 2]), "C": rng.randint(1, 4), "K": rng.randint(1, 4), "P": rng.randint(1, 4),
             "Q": rng.randint(1, 3), "R": rng.choice([1, 1, 2, 3]), "S": rng.choice([1, 1, 2]),
             "Wstride": rng.choice([1, 1, 2]), "Hstride": 1}
    temporal = [{d: 1 for d in DIMS}, {d: 1 for d in DIMS}]
    sx = [{d: 1 for d in DIMS}, {d: 1 for d in DIMS}]
    sy = [{d: 1 for d in DIMS}, {d: 1 for d in DIMS}]
    fan = [(bufs, 1), (fx, fy)]
    for d in DIMS:
        for p in _primes(layer[d]):
            slots = [("t", 0), ("t", 1)]
            for l in range(2):
                if sy[l][d] == 1 and math.prod(sx[l].values()) * p <= fan[l][0]:
                    slots += [("x", l)] * 2
                if sx[l][d] == 1 and math.prod(sy[l].values()) * p <= fan[l][1]:
                    slots += [("y", l)] * 2
            kind, l = rng.choice(slots)
            {"t": temporal, "x": sx, "y": sy}[kind][l][d] *= p
    mapping = []
    for l, name in enumerate(("DRAM", "Buf")):
        perm = list(DIMS)
        rng.shuffle(perm)
        xd = [d for d in DIMS if sx[l][d] > 1]
        yd = [d for d in DIMS if sy[l][d] > 1]
        rng.shuffle(xd)
        rng.shuffle(yd)
        entry = {"target": name, "temporal": {d: v for d, v in temporal[l].items() if v > 1},
                 "permutation": "".join(perm)}
        if xd or yd:
            entry.update(spatial={d: sx[l][d] * sy[l][d] for d in xd + yd}, spatial_permutation="".join(xd + yd),
                         split=len(xd))
        if l == 1 and rng.random() < 0.3:
            entry["bypass"] = [rng.choice(["Weights", "Inputs", "Outputs"])]
        mapping.append(entry)
    return {"id": f"fanout-mac-gen-{index:03d}", "layer": layer, "arch": arch, "mapping": mapping}


def has_links(case: dict) -> bool:
    """Whether the model predicts link transfers below the MAC fanout (uses this checkout's model)."""
    from formulation.model.encoding import encode
    from formulation.model.links import link_transfers
    from formulation.model.nest import build_nest
    from formulation.specs.loading import case_from_dict
    import numpy as np

    c = case_from_dict(case)
    arrays = encode(c.mapping)
    nest = build_nest(arrays)
    reads = np.zeros((1, len(c.arch.levels), 3), dtype=np.int64)
    return bool(link_transfers(c.layer, c.arch, arrays, nest, reads).transfers[0, -1].any())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's model
    rng = random.Random(args.seed)
    lines = [json.loads(line) for line in SHARED.read_text().splitlines() if line.strip()]
    for line in lines:
        line["set"] = "fanout-into-macs (shared reference)"
    made = linked = 0
    while made < args.count:
        case = random_case(rng, made)
        try:
            links = has_links(case)
        except Exception:  # noqa: BLE001  an illegal draw (capacity); draw again
            continue
        if not links and linked < made // 2:  # keep about half with links
            continue
        run = subprocess.run(ORACLE, input=json.dumps(case), capture_output=True, text=True, timeout=120)
        result = json.loads(run.stdout) if run.returncode == 0 and run.stdout.strip() else {}
        if not result.get("ok"):
            continue
        case["timeloop"] = {k: result[k] for k in ("cycles", "energy_pJ", "utilization", "macs",
                                                   "energy_breakdown_pJ", "levels", "networks") if k in result}
        case["set"] = f"generate_fanout_into_macs.py --seed {args.seed}"
        case["tags"] = ["fanout_into_macs"] + (["link_transfers_predicted"] if links else [])
        lines.append(case)
        made += 1
        linked += links
        print(f"{case['id']}: links {links}", flush=True)
    OUT.write_text("".join(json.dumps(c) + "\n" for c in lines))
    print(f"wrote {len(lines)} cases to {OUT} ({linked} generated with predicted links)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
