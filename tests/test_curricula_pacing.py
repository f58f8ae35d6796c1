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
    assert 0.2 < pace(0.3) < 1.0 or name in ("step", "climb_step")  # a step function may still be flat here


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


def _climb_reference(name, total_steps, end_percent, c0):
    """CLIMB's get_pacing_fn (Martinez et al. 2023, src/data_curriculum/pacing_fn.py) written out in
    its own terms: steps, start_percent = 0, end_percent, starting_difficulty, max_difficulty = 1, c = 10."""
    num_steps = int(end_percent * total_steps)
    c, top = 10, 1.0
    if name == "linear":
        return lambda s: min((top - c0) / num_steps * s + c0, top)
    if name == "quad":
        return lambda s: min((top - c0) / num_steps ** 2 * s ** 2 + c0, top)
    if name == "root":
        return lambda s: min((top - c0) / num_steps ** 0.5 * s ** 0.5 + c0, top)
    if name == "step":
        return lambda s: c0 if s < end_percent * total_steps else top
    if name == "exp":
        return lambda s: min((top - c0) / (math.exp(c) - 1) * (math.exp(s * c / num_steps) - 1) + c0, top)
    if name == "log":
        return lambda s: min((top - c0) * (1 + math.log(s / num_steps + math.exp(-c)) / c) + c0, top)
    raise ValueError(name)


@pytest.mark.parametrize("ours,theirs", [("climb_linear", "linear"), ("climb_quadratic", "quad"), ("climb_root", "root"),
                                         ("climb_exponential", "exp"), ("climb_logarithmic", "log"), ("climb_step", "step")])
@pytest.mark.parametrize("c0,ramp", [(0.2, 0.8), (0.05, 1.0), (0.1, 0.5)])
def test_climb_pacing_functions_are_climbs(ours, theirs, c0, ramp):
    total = 1000
    ref = _climb_reference(theirs, total, ramp, c0)
    pace = pacing_function(ours, start=c0, ramp=ramp)
    for s in range(total + 1):
        assert pace(s / total) == pytest.approx(ref(s), abs=1e-9), (ours, s)


def test_same_names_different_formulas_as_documented():
    """Ours and CLIMB's exponential/logarithmic/step differ (the README says which is which)."""
    xs = np.linspace(0, 1, 2001)

    def gap(a, b, c0):
        fa, fb = pacing_function(a, start=c0, ramp=1.0), pacing_function(b, start=c0, ramp=1.0)
        return max(abs(fa(x) - fb(x)) for x in xs)

    assert gap("exponential", "climb_exponential", 0.2) == pytest.approx(0.417, abs=0.002)
    assert gap("logarithmic", "climb_logarithmic", 0.05) == pytest.approx(0.519, abs=0.002)
    assert gap("step", "climb_step", 0.05) == pytest.approx(0.7125, abs=0.002)
    assert gap("linear", "climb_linear", 0.1) == 0.0
