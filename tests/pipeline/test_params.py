"""Parameter values are checked against the steps' annotations before anything runs, and
an unknown name is one line listing the known ones (with a close match)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Optional

import pytest

from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel
from mlkernel.pipeline.annotations import check_value

Writer = Callable[[Path, str, str], Path]
MLK = str(Path(sys.executable).with_name("mlk"))

SOURCE = """
from __future__ import annotations

from typing import Literal, Optional

import mlkernel as mlk

@mlk.step
def prepare(n: int = 10, scale: Optional[float] = None):
    return [i * (scale or 1.0) for i in range(n)]

@mlk.step(output="model:typed")
def fit(values, C: float = 1.0, kernel: Literal["rbf", "linear"] = "rbf",
        layers: list[int] = [8], verbose: bool = False, tag: str = "x"):
    return {"C": C, "kernel": kernel, "layers": layers, "n": len(values)}

@mlk.pipeline
def typed(seed: int = 0):
    fit(prepare())
"""


def fit(
    C: float,
    n: int,
    flag: bool,
    text: str,
    kernel: Literal["rbf", "linear"],
    maybe: Optional[float],  # noqa: UP045 - the spelling under test
    either: int | str,
    layers: list[int],
    anything: Any,
    bare,  # type: ignore[no-untyped-def]
) -> None: ...


@pytest.mark.parametrize(
    ("name", "value", "fitted"),
    [
        ("C", 0.5, 0.5), ("C", 2, 2.0), ("n", 3, 3), ("flag", True, True),
        ("text", "abc", "abc"), ("kernel", "linear", "linear"), ("maybe", None, None),
        ("maybe", 1, 1.0), ("either", "x", "x"), ("either", 4, 4), ("layers", [1, 2], [1, 2]),
        ("anything", object, object), ("bare", {"a": 1}, {"a": 1}),
    ],
)  # fmt: skip
def test_values_that_fit_are_taken(name: str, value: object, fitted: object) -> None:
    got = check_value(fit, name, value, "step fit")
    assert got == fitted and type(got) is type(fitted)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("C", "abc", "C must be a float, got 'abc' (step fit declares C: float)"),
        ("C", True, "C must be a float, got true"),
        ("n", 1.5, "n must be an int, got 1.5"),
        ("flag", 1, "flag must be a bool, got 1"),
        ("text", 3, "text must be a str, got 3 (step fit declares text: str); quote it"),
        ("kernel", "poly", "kernel must be one of 'rbf', 'linear', got 'poly'"),
        ("maybe", "x", "maybe must be a float or None, got 'x'"),
        ("layers", [1, "a"], "layers must be a list of int, got [1, 'a']"),
        ("layers", 3, "layers must be a list of int, got 3"),
    ],
)
def test_values_that_do_not_fit_are_one_line(name: str, value: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_value(fit, name, value, "step fit")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def _mlk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLK, "-C", str(root), *args], capture_output=True, text=True)


@pytest.fixture
def typed(k: Kernel, write: Writer, declare: Callable[[Path, str], None]) -> Kernel:
    write(k.root, "flows/typed.py", SOURCE)
    declare(k.root, '[pipelines]\nml_mode = false\ntyped = "flows/typed.py:typed"\n')
    return k


@pytest.mark.parametrize(
    ("param", "error"),
    [
        ("C=abc", "mlk: error: C must be a float, got 'abc' (step fit declares C: float)"),
        ("fit.kernel=poly", "mlk: error: kernel must be one of 'rbf', 'linear', got 'poly'"),
        ("prepare.scale=yes", "mlk: error: scale must be a float or None, got 'yes'"),
        ("seed=0.5", "mlk: error: seed must be an int, got 0.5 (pipeline typed declares"),
        ("c=1", "mlk: error: pipeline typed has no parameter 'c' (did you mean 'C'?); "
                "parameters: C, kernel, layers, n, scale, seed, tag, verbose"),
        ("fti.C=1", "mlk: error: parameter 'fti.C': pipeline typed has no step 'fti' "
                    "(did you mean 'fit'?); steps: prepare, fit"),
        ("fit.layer=[1]", "mlk: error: parameter 'fit.layer': step fit has no parameter "
                          "'layer' (did you mean 'layers'?)"),
    ],
)  # fmt: skip
def test_a_bad_parameter_stops_before_any_step_runs(typed: Kernel, param: str, error: str) -> None:
    done = _mlk(typed.root, "run", "typed", "-p", param)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(error), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert typed.pipelines.runs() == []  # nothing started, nothing recorded


def test_good_parameters_reach_the_step(typed: Kernel) -> None:
    done = _mlk(typed.root, "run", "typed", "-q", "-p", "C=2", "-p", "kernel=\"linear\"",
                "-p", "layers=[4, 2]", "-p", "prepare.scale=0.5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert typed.load("model:typed") == {"C": 2.0, "kernel": "linear", "layers": [4, 2], "n": 10}


def test_config_params_are_checked_too(typed: Kernel, declare: Callable[[Path, str], None]) -> None:
    declare(typed.root, "[pipelines.params.typed]\nfit.verbose = 1\n")
    done = _mlk(typed.root, "run", "typed")
    assert done.returncode == 2
    assert done.stderr.startswith("mlk: error: verbose must be a bool, got 1"), done.stderr
