"""Compute reference.json for every spec set here with timeloop-model v3.0.3 (a development tool).

    TIMELOOP_ROOT=/opt/timeloop-v3.0.3 /opt/oracle-venv/bin/python tests/data/timeloop_specs/make_reference.py

Runs ``timeloop-model`` on each directory's YAML files exactly as they are (copied to a scratch
directory), parses ``timeloop-model.stats.txt`` with ``parse_stats`` of the shared oracle driver
(/work/shared/timeloop-oracle/tl_eval.py) and writes, per level and data-space, the total scalar
reads, updates and fills (per-instance count x utilized instances), the cycles and the total
energy (compute + storage + networks) in pJ. The test suite only reads the JSON files.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("TIMELOOP_ROOT", "/opt/timeloop-v3.0.3")
sys.path.insert(0, os.environ.get("TL_ORACLE", "/work/shared/timeloop-oracle"))
from tl_eval import parse_stats  # noqa: E402


def reference(spec_dir: str) -> dict:
    work = tempfile.mkdtemp(prefix="tlref_")
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(spec_dir, "*.yaml")))
    for name in files:
        shutil.copy(os.path.join(spec_dir, name), work)
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(ROOT, "lib"))
    run = subprocess.run([os.path.join(ROOT, "bin", "timeloop-model"), *files], cwd=work, env=env,
                         capture_output=True, text=True, timeout=120)
    stats_path = os.path.join(work, "timeloop-model.stats.txt")
    if run.returncode != 0 or not os.path.exists(stats_path):
        raise SystemExit(f"{spec_dir}: timeloop-model failed\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    raw = parse_stats(open(stats_path).read())
    shutil.rmtree(work)
    energy = 0.0
    levels = {}
    for name, level in sorted(raw["levels"].items(), key=lambda kv: kv[1]["level_id"]):
        energy += float(level["stats"].get("Energy (total)", 0) or 0)
        if level["level_id"] == 0:
            macs = int(level["stats"]["Computes (total)"])
            continue
        tensors = {}
        for tensor, s in level["tensors"].items():
            inst = int(s.get("Utilized instances (max)", 1))
            energy += float(s.get("Energy (total)", 0)) + float(s.get("Temporal Reduction Energy (total)", 0)) \
                + float(s.get("Address Generation Energy (total)", 0))
            tensors[tensor] = {key: int(s.get(f"Scalar {key} (per-instance)", 0)) * inst
                               for key in ("reads", "updates", "fills")}
            tensors[tensor]["utilized_instances"] = inst
            tensors[tensor]["utilized_capacity"] = int(s.get("Utilized capacity", 0))
        levels[name] = {"tensors": tensors}
    for network in raw["networks"].values():
        for s in network.values():
            energy += sum(float(s.get(k, 0) or 0) for k in ("Energy (total)", "Link transfer energy (total)",
                                                            "Spatial Reduction Energy (total)"))
    return {"tool": "timeloop-model v3.0.3 (NVlabs/timeloop tag v3.0.3)",
            "command": "timeloop-model " + " ".join(files),
            "macs": macs, "cycles": int(raw["summary"]["Cycles"]), "energy_pJ": energy, "levels": levels}


def main() -> None:
    for spec_dir in sorted(d for d in glob.glob(os.path.join(HERE, "*")) if os.path.isdir(d)):
        ref = reference(spec_dir)
        with open(os.path.join(spec_dir, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
            f.write("\n")
        print(os.path.basename(spec_dir), ref["cycles"], ref["energy_pJ"])


if __name__ == "__main__":
    main()
