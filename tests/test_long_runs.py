"""Long runs lose nothing: real ``codesign optimize`` processes stopped by SIGTERM, SIGINT and SIGKILL, and
the evaluation budget that makes results identical across ``--jobs``.

The signal tests run ResNet-18 (a start takes well over ten seconds), wait until the run has started its
search (the staging folder exists and a few seconds have passed), send the signal and check what was written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from codesign.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "tiny", "layers": [
    {"name": "conv_a", "N": 1, "C": 16, "K": 32, "P": 14, "Q": 14, "R": 3, "S": 3},
    {"name": "fc_b", "N": 1, "C": 64, "K": 48, "P": 1, "Q": 1, "count": 2}]}


def _start(out: Path, *extra: str, pipes: bool = True, network: str = "resnet18") -> subprocess.Popen:
    """A ``codesign optimize`` process in its own process group (a session), as a shell runs a command."""
    argv = [sys.executable, "-m", "codesign", "optimize", "--network", network, "--area-budget", "2",
            "--quiet", "--out", str(out), *extra]
    if "--total-time" not in extra:
        argv += ["--time-limit", "300"]
    where = subprocess.PIPE if pipes else subprocess.DEVNULL  # a killed parent's workers may hold pipes open
    return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=where,
                            stderr=where, text=True, start_new_session=True)


def _wait_for_search(proc: subprocess.Popen, out: Path, seconds: float) -> None:
    """Until the staging folder exists (the search began), then ``seconds`` more."""
    t0 = time.monotonic()
    while not list(out.parent.glob(f".{out.name}.tmp-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 60, "the run did not start"
        time.sleep(0.2)
    time.sleep(seconds)


@pytest.mark.parametrize("sig, workers, group", [(signal.SIGTERM, ["--starts", "12", "--jobs", "2"], True),
                                                 (signal.SIGINT, ["--starts", "12", "--jobs", "1"], False)])
def test_a_signal_ends_the_run_with_the_running_starts_best_written(tmp_path, sig, workers, group):
    """SIGTERM to the whole process group with two worker processes (what ``timeout`` and batch schedulers
    send; the workers leave it to the parent), SIGINT (Ctrl-C) with the starts in the main process.

    Twelve starts (a ResNet-18 start takes a few seconds with the compiled model), so the signal always
    arrives while starts are running, whatever the machine's speed."""
    out = tmp_path / "run"
    proc = _start(out, *workers)
    _wait_for_search(proc, out, 8.0 if "2" in workers[-1] else 4.0)  # worker processes take a while to spawn
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    t_signal = time.monotonic()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "interrupted"
    assert doc["hardware"] is not None and doc["totals"]["feasible"]  # the running starts' bests, not nothing
    assert doc["lower_bound"] is None and "interrupted" in doc["bound"]["covers"]  # no 30 s bound after a stop
    assert time.monotonic() - t_signal < 25
    assert len(doc["start_results"]) == 12  # every start reported (the running ones were not thrown away)
    assert len((out / "layers.jsonl").read_text().splitlines()) == len(doc["layers"])
    assert not list(tmp_path.glob(".run.*"))  # no staging folder left


def test_a_ctrl_c_to_the_process_group_while_polishing_keeps_the_design(tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: during polishing that is the mapper's workers
    and their Manager too; the run still ends with the search's (or a polished) design written."""
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    proc = _start(out, "--starts", "1", "--jobs", "2", "--total-time", "60", "--time-limit", "1",
                  network=str(tmp_path / "tiny.yaml"))
    _wait_for_search(proc, out, 6.0)  # the search has ended: polishing and the bound run
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "interrupted" and doc["totals"]["feasible"]
    assert doc["polish"] is not None and doc["polish"]["error"] is None


def test_a_killed_forced_rerun_leaves_the_old_result_whole(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "result.json").write_text('{"old": true}\n')
    (out / "layers.jsonl").write_text("old\n")
    proc = _start(out, "--force", "--starts", "2", "--jobs", "2", pipes=False)
    _wait_for_search(proc, out, 2.0)
    proc.kill()
    proc.wait(timeout=60)
    assert (out / "result.json").read_text() == '{"old": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["layers.jsonl", "result.json"]


def test_the_evaluation_budget_gives_the_same_design_for_any_jobs(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    docs = []
    for jobs, run in (("1", "a"), ("2", "b")):
        code = main(["optimize", "--network", str(tmp_path / "tiny.yaml"), "--area-budget", "0.1", "--starts", "2",
                     "--jobs", jobs, "--max-evaluations", "800", "--time-limit", "300", "--seed", "5", "--quiet",
                     "--out", str(tmp_path / run)])
        assert code == 0
        docs.append(json.loads((tmp_path / run / "result.json").read_text()))
    a, b = docs
    assert a["hardware"] == b["hardware"] and a["totals"] == b["totals"]
    assert [e["case"]["mapping"] for e in a["layers"]] == [e["case"]["mapping"] for e in b["layers"]]
    assert a["evaluations"] == b["evaluations"] and 800 <= a["evaluations"] < 3000


@pytest.mark.parametrize("method", ["ga", "random"])
def test_baselines_under_an_evaluation_budget_repeat_exactly(tmp_path, method, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    docs = []
    for jobs, run in (("1", "a"), ("2", "b")):
        assert main(["optimize", "--network", str(tmp_path / "tiny.yaml"), "--area-budget", "0.1", "--method", method,
                     "--jobs", jobs, "--max-evaluations", "200", "--time-limit", "300", "--seed", "2", "--quiet",
                     "--out", str(tmp_path / run)]) == 0
        docs.append(json.loads((tmp_path / run / "result.json").read_text()))
    assert docs[0]["totals"] == docs[1]["totals"] and docs[0]["hardware"] == docs[1]["hardware"]
