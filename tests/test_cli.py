"""The ``inosim run`` command: the table, the file, and interruption safety."""

from __future__ import annotations

import pytest

from simulator.cli import main
from simulator.sweep.storage import read_netcdf


def test_run_prints_table_and_writes_file(tmp_path, capsys):
    out = tmp_path / "res.nc"
    assert main(["run", "--patients", "2000", "--seed", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("CR/CRi rate", "<= 3.3 mg/m2", "> 3.3 mg/m2", "all patients", "simulated (95% CI)",
                   "pub.", "months", "mg/m2"):
        assert needle in text
    ds = read_netcdf(out)
    assert ds.sizes["patient"] == 2000 and ds.attrs["seed"] == 4
    assert ds.attrs["scenario_name"] == "pooled_analysis"
    assert list(tmp_path.iterdir()) == [out]


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    from simulator.sweep import records

    def interrupted(*args, **kwargs):  # the records file is open, not yet complete
        assert len(list(tmp_path.iterdir())) == 1
        raise KeyboardInterrupt

    monkeypatch.setattr(records, "simulate", interrupted)
    out = tmp_path / "res.nc"
    assert main(["run", "--patients", "100", "--out", str(out)]) == 130
    assert list(tmp_path.iterdir()) == []


def test_version(capsys):
    from simulator import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"inosim {__version__}\n"


@pytest.mark.parametrize("args", [["run", "--patients", "0"], ["run", "--seed", "-1"],
                                  ["bench", "--repeats", "0"]])
def test_bad_flags_exit_2(args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--patients", "100", "--out", str(blocker / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("inosim: ") and err.count("\n") == 0


def test_compare_refuses_two_results_files(tmp_path, capsys):
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    assert main(["compare", str(a), str(b)]) == 2
    assert "one results file" in capsys.readouterr().err
