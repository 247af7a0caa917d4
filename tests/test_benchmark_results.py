"""The benchmarks' results files: a run replaces the file, or ``--append`` adds it after the runs there."""

from __future__ import annotations

import json

from benchmarks.common import write_runs


def test_append_keeps_earlier_runs_and_a_single_run_file_counts_as_one(tmp_path):
    path = tmp_path / "r.json"
    write_runs({"run": 1}, path, append=True)             # no file yet: the first run
    write_runs({"run": 2}, path, append=True)
    assert json.loads(path.read_text()) == [{"run": 1}, {"run": 2}]
    write_runs({"run": 3}, path, append=False)            # without --append the run replaces the file
    assert json.loads(path.read_text()) == [{"run": 3}]
    path.write_text(json.dumps({"run": 0}))               # an old file holding one run as an object
    write_runs({"run": 4}, path, append=True)
    assert json.loads(path.read_text()) == [{"run": 0}, {"run": 4}]
