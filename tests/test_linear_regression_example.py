"""examples/linear_regression.py: the d2l chapter's two versions train to the true line.

Run as a real subprocess, as a user runs it; the expected values are the chapter's (final
loss of the order of the noise variance, 0.5 * 0.01**2 = 5e-5) and the true parameters.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRUE_W, TRUE_B = (2.0, -3.4), 4.2


def test_both_versions_learn_the_true_line():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "linear_regression.py")],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    # The chapter's lines: 'epoch %d, loss %f' (from scratch) and 'epoch %d, loss: %f'.
    scratch = [float(v) for v in re.findall(r"^epoch \d, loss (\S+)$", out, re.MULTILINE)]
    concise = [float(v) for v in re.findall(r"^epoch \d, loss: (\S+)$", out, re.MULTILINE)]
    assert len(scratch) == 3 and len(concise) == 3, out
    for losses in (scratch, concise):
        assert losses[0] > losses[-1], out  # it learns
        assert losses[-1] < 1e-4, out
    results = re.findall(r"^(from scratch|high-level API): w = \[(\S+), (\S+)\] .*b = (\S+) ",
                         out, re.MULTILINE)
    assert [name for name, *_ in results] == ["from scratch", "high-level API"], out
    for name, w0, w1, b in results:
        assert abs(float(w0) - TRUE_W[0]) < 0.01 and abs(float(w1) - TRUE_W[1]) < 0.01, out
        assert abs(float(b) - TRUE_B) < 0.01, out
