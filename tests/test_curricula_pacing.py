import math

import numpy as np
import pytest

from curricula import PACING, CurriculumError, order_documents, pacing_function


@pytest.mark.parametrize("name", sorted(set(PACING) - {"none"}))
def test_pacing_starts_at_start_fraction_grows_and_reaches_all_data(name):
    pace = pacing_function(name, start=0.2, ramp=0.5)
    values = [pace(p) for p in np.linspace(0, 1, 101)]
    assert values[0] == pytest.approx(0.2)
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:])), "pacing must never shrink the pool"
    assert pace(0.5) == pytest.approx(1.0) and pace(1.0) == pytest.approx(1.0)
    assert 0.2 < pace(0.3) < 1.0 or name == "step"


def test_pacing_shapes_differ_as_named():
    at = lambda n, x: pacing_function(n, start=0.1, ramp=1.0)(x)  # noqa: E731
    assert at("linear", 0.5) == pytest.approx(0.55)
    assert at("root", 0.25) == pytest.approx(0.1 + 0.9 * 0.5)
    assert at("quadratic", 0.5) == pytest.approx(0.1 + 0.9 * 0.25)
    assert at("exponential", 0.5) == pytest.approx(0.1 ** 0.5)
    assert at("quadratic", 0.5) < at("linear", 0.5) < at("logarithmic", 0.5)
    # baby steps: flat within a stage, a jump between stages
    step = pacing_function("step", start=0.25, ramp=1.0, stages=4)
    assert step(0.1) == step(0.2) == pytest.approx(0.25) and step(0.3) == pytest.approx(0.25 + 0.75 / 4)
    assert pacing_function("none")(0.0) == 1.0


def test_competence_is_platanios_formula():
    c0, T = 0.01, 0.8
    pace = pacing_function("competence", start=c0, ramp=T)
    for t in (0.0, 0.1, 0.4, 0.79, 0.9):
        assert pace(t) == pytest.approx(min(1.0, math.sqrt(t * (1 - c0 ** 2) / T + c0 ** 2)))


def test_bad_pacing_and_ordering_names_are_clear():
    with pytest.raises(CurriculumError, match="unknown pacing function 'cubic'"):
        pacing_function("cubic")
    with pytest.raises(CurriculumError, match="start fraction"):
        pacing_function("linear", start=0)
    with pytest.raises(CurriculumError, match="unknown ordering 'sideways'"):
        order_documents("sideways", np.zeros(3), 0)


def test_orderings():
    scores = np.array([3.0, 1.0, 2.0, 1.0])
    assert order_documents("easy_to_hard", scores, 0).tolist() == [1, 3, 2, 0]
    assert order_documents("hard_to_easy", scores, 0).tolist() == [0, 2, 1, 3]
    r1, r2 = order_documents("random", scores, 7), order_documents("random", scores, 7)
    assert r1.tolist() == r2.tolist() and sorted(r1.tolist()) == [0, 1, 2, 3]
