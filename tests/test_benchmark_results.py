"""The benchmarks' results files: ``--overwrite`` replaces the runs there, ``--append`` adds one after them."""

from __future__ import annotations

import json

import pytest

from benchmarks.common import output_error, write_runs


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


@pytest.mark.parametrize("bench", ["mapper", "bound"])
def test_a_run_never_replaces_earlier_runs_without_overwrite(tmp_path, capsys, bench):
    """The check comes before the run: the file and its runs stay as they were."""
    import importlib

    path = tmp_path / "r.json"
    path.write_text(json.dumps([{"run": 1}]))
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"benchmarks.{bench}").main(["--output", str(path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "--append" in err and "--overwrite" in err
    assert json.loads(path.read_text()) == [{"run": 1}]


def test_output_error_names_the_file_unless_append_or_overwrite(tmp_path):
    from argparse import Namespace

    path = tmp_path / "r.json"
    assert output_error(Namespace(output=path, append=False, overwrite=False)) is None   # nothing to lose yet
    path.write_text("[]")
    assert str(path) in output_error(Namespace(output=path, append=False, overwrite=False))
    assert output_error(Namespace(output=path, append=True, overwrite=False)) is None
    assert output_error(Namespace(output=path, append=False, overwrite=True)) is None
