"""The basic-concepts tutorials run on plugrad and print what the tutorials print."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _run(name: str) -> list[str]:
    out = subprocess.run([sys.executable, str(SEEDS / name)], capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


# Printed by the tutorial (seed 000), in order. Three lines differ from that older MegEngine
# release, on purpose: the gradient of the 0-d ``b`` has b's shape (the tutorial shows [1.]),
# a Parameter prints as Parameter (as the newer tutorial, seed 002, shows), and a loss is a
# Tensor, printed as one.
EXPECTED_000 = """\
Tensor([0 1 2 3 4], dtype=int32, device=xpux:0)
Tensor([0. 1. 2. 3. 4.], device=xpux:0)
Tensor([0. 1. 2. 3. 4.], device=xpux:0)
<class 'numpy.float32'>
<class 'plugrad.tensor.Tensor'>
Tensor([0. 1. 2. 3. 4.], dtype=float16, device=xpux:0)
<class 'numpy.ndarray'>
Tensor([1 2 3], dtype=int32, device=xpux:0)
Tensor([1. 2. 3.], device=xpux:0)
(2, 3)
6
5.0 <class 'float'>
Tensor([[3. 6. 3.]
 [3. 6. 3.]], device=xpux:0)
Tensor([[1. 2. 1.]
 [1. 2. 1.]], device=xpux:0)
Tensor([[2. 8. 2.]
 [2. 8. 2.]], device=xpux:0)
Tensor([[2. 2. 2.]
 [2. 2. 2.]], device=xpux:0)
Tensor([[3. 6. 3.]
 [3. 6. 3.]], device=xpux:0)
Tensor([[1. 2. 1.]
 [1. 2. 1.]], device=xpux:0)
Tensor([[2. 8. 2.]
 [2. 8. 2.]], device=xpux:0)
Tensor([[2. 2. 2.]
 [2. 2. 2.]], device=xpux:0)
Tensor([4. 5.], device=xpux:0)
(2, 3)
(3, 2)
(2, 3, 4, 5)
(2, 12, 5)
Tensor([[35. 44.]
 [44. 56.]], device=xpux:0)
Tensor([2.], device=xpux:0)
Tensor(1.0, device=xpux:0)
<class 'plugrad.tensor.Parameter'>
<class 'plugrad.tensor.Parameter'>
<class 'plugrad.tensor.Tensor'>
Parameter([2.98], device=xpux:0) None
9.75
Tensor(9.75, device=xpux:0)""".splitlines()

# Printed by seed 002's doctests, in order.
EXPECTED_002 = """\
Tensor([[1 2 3]
 [4 5 6]], dtype=int32, device=xpux:0)
Tensor([[4 8 4]
 [3 6 3]], dtype=int32, device=xpux:0)
Tensor([[0 0 0]
 [1 2 1]], dtype=int32, device=xpux:0)
Tensor([[ 4 16  4]
 [ 2  8  2]], dtype=int32, device=xpux:0)
Tensor([[1. 1. 1.]
 [2. 2. 2.]], device=xpux:0)
(2, 3) (3, 2)
(2, 3) (3, 2)
Tensor(2.0, device=xpux:0)
None None
Tensor(2.0, device=xpux:0)
Tensor(4.0, device=xpux:0)
Parameter(3.0, device=xpux:0)
Tensor(2.0, device=xpux:0)
Parameter(2.98, device=xpux:0)
TypeError: optimizer can only optimize Parameters, but one of the params is \
<class 'plugrad.tensor.Tensor'>
9.75
Tensor(9.75, device=xpux:0)
(100,) (100,)""".splitlines()


def _fit_lines(lines: list[str], prefix: str) -> tuple[list[str], list[str]]:
    fits = [" ".join(line.split()) for line in lines if line.lower().startswith(prefix)]
    half = len(fits) // 2
    return fits[:half], fits[half:]


def test_seed_000_prints_what_the_tutorial_prints():
    lines = _run("basic_concepts_000.py")
    assert lines[:len(EXPECTED_000)] == EXPECTED_000


def test_seed_000_line_fit_matches_numpy_to_three_decimals():
    numpy_fit, plugrad_fit = _fit_lines(_run("basic_concepts_000.py"), "epoch =")
    assert len(numpy_fit) == 5 and numpy_fit == plugrad_fit
    losses = [float(re.search(r"loss = ([\d.]+)", line).group(1)) for line in plugrad_fit]
    assert losses == sorted(losses, reverse=True)


def test_seed_002_prints_what_the_tutorial_prints():
    lines = _run("basic_concepts_002.py")
    assert lines[:len(EXPECTED_002)] == EXPECTED_002


def test_seed_002_line_fit_matches_numpy_to_three_decimals():
    numpy_fit, plugrad_fit = _fit_lines(_run("basic_concepts_002.py"), "epoch =")
    assert len(numpy_fit) == 5 and numpy_fit == plugrad_fit
