"""The example scripts in experiments/: progress on a terminal only, one-line ends on Ctrl-C and bad arguments."""

from __future__ import annotations

import fcntl
import os
import pty
import runpy
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from conftest import ROOT

SCRIPTS = sorted(p for p in (ROOT / "experiments").glob("*.py") if not p.name.startswith("_"))  # _x.py: shared


def test_every_example_script_is_covered():
    assert [p.name for p in SCRIPTS] == ["assurance_report.py", "calibration_report.py", "causes_report.py",
                                         "comparators_report.py", "evidence_report.py",
                                         "psa_two_cycles_vs_label.py", "segments_report.py", "sensitivity_report.py",
                                         "sensitivity_sos.py", "strategy_answers.py", "structures_report.py",
                                         "sweep_report.py", "trials_report.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
@pytest.mark.parametrize("argument", [["--patients", "0"], ["--seed", "x"], ["--bogus"]])
def test_a_bad_argument_is_a_usage_error(script, argument, tmp_path, monkeypatch, capsys):
    """Run as ``python SCRIPT ARGS`` would, in this process (a new interpreter per case cost 2 minutes of CPU)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), *argument])
    monkeypatch.syspath_prepend(str(script.parent))  # as the interpreter puts a script's folder first
    with pytest.raises(SystemExit) as end:
        runpy.run_path(str(script), run_name="__main__")
    err = capsys.readouterr().err
    assert end.value.code == 2 and err.startswith("usage: ") and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"{script.name}: error: ")
    assert list(tmp_path.iterdir()) == []


def test_sobol_n_must_be_a_power_of_two(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "sensitivity_sos.py"), "--n", "100"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "argument --n: must be a power of 2, got 100" in proc.stderr


def test_quiet_when_not_on_a_terminal(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "psa_two_cycles_vs_label.py"),
                           "--draws", "6", "--replicates", "2", "--patients", "60", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "draw/s" not in proc.stderr and "P(two cycles" in proc.stdout


def test_progress_on_a_terminal_and_ctrl_c_ends_in_one_line(tmp_path):
    """On a terminal (a pseudo-terminal 100 columns wide) a tqdm bar shows; Ctrl-C ends with exit 130."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    script = ROOT / "experiments" / "sensitivity_sos.py"
    proc = subprocess.Popen([sys.executable, str(script), "--n", "4096", "--out-dir", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 120
    while b"set/s]" not in seen and time.monotonic() < deadline:
        seen += os.read(master, 4096)
    assert b"one-way:" in seen, seen  # the bar, with its description and unit
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    try:
        while chunk := os.read(master, 4096):
            seen += chunk
    except OSError:  # the terminal closes with the process
        pass
    os.close(master)
    text = seen.decode(errors="replace")
    assert "Traceback" not in text
    assert text.rstrip().splitlines()[-1].endswith(f"{script.name}: interrupted; files already written are complete")
    assert not (tmp_path / "out").exists()
