"""Claims judged in one place: tolerance = k·SE + bias + floor, margins, exclusions, "not judged"."""

import math

import numpy as np
import pandas as pd
import pytest

from overparam.claims import Claim, Evidence, judge, line_fit, margin_of, mean_sem, pooled_mean, slope_with_se


def _claim(**kw):
    def evaluate(df, theory):
        m, se, n = mean_sem(df["x"])
        return Evidence(m, theory, se, n)
    return Claim("x has mean theory", evaluate, "k = 3 standard errors", **kw)


def _table(values, status=None):
    df = pd.DataFrame({"x": values, "part": "p"})
    if status is not None:
        df["solver_status"] = status
    return df


def test_close_passes_within_k_standard_errors_and_fails_outside():
    x = np.random.default_rng(0).normal(1.0, 0.1, 100)
    m, se, n = mean_sem(x)
    assert se == pytest.approx(x.std(ddof=1) / 10)
    v = judge("s", _claim(), _table(x), theory=1.0)
    assert v.status == "pass" and v.tolerance == pytest.approx(3 * se) and v.n == 100
    assert v.margin == pytest.approx(abs(m - 1.0) / (3 * se))
    # a theory off by 5 standard errors fails
    v = judge("s", _claim(), _table(x), theory=m + 5 * se)
    assert v.status == "fail" and v.margin == pytest.approx(5 / 3)


def test_one_sided_margins_and_zero_tolerance():
    assert margin_of("at_most", 0.9, 1.0, 0.1) == pytest.approx(-1.0)
    assert margin_of("at_least", 0.85, 1.0, 0.1) == pytest.approx(1.5)
    assert margin_of("at_most", 1.0, 1.0, 0.0) == 0.0 and margin_of("at_most", 1.01, 1.0, 0.0) == math.inf
    assert margin_of("close", float("nan"), 1.0, 1.0) == math.inf


def test_unconverged_points_are_excluded_and_counted_and_too_many_fail():
    x = np.r_[np.full(19, 1.0) + np.linspace(-0.01, 0.01, 19), 50.0]
    status = ["converged"] * 19 + ["max_steps"]
    v = judge("s", _claim(converged=("solver_status",)), _table(x, status), theory=1.0)
    assert v.status == "pass" and v.n == 19 and "1 of 20 points excluded" in v.detail
    status = ["converged"] * 15 + ["max_steps"] * 5
    v = judge("s", _claim(converged=("solver_status",)), _table(x, status), theory=1.0)
    assert v.status == "fail" and "too many unconverged points: 5 of 20" in v.detail
    status = ["converged"] * 15 + [None] * 5  # rows of another part, without this solver: kept, not counted
    v = judge("s", _claim(converged=("solver_status",)), _table(x[:19].tolist() + [1.0], status), theory=1.0)
    assert v.status == "pass" and v.n == 20 and "excluded" not in v.detail


def test_not_judged_for_a_single_seed_the_test_scale_or_no_data():
    assert judge("s", _claim(), _table([1.0]), theory=1.0).status == "not judged"
    v = judge("s", _claim(), _table([1.0, 1.1, 0.9]), theory=1.0, scale="test")
    assert v.status == "not judged" and "test scale" in v.detail and math.isfinite(v.measured)
    assert judge("s", _claim(part="other"), _table([1.0, 1.1]), theory=1.0).status == "not judged"
    none = Claim("c", lambda df, th: None, "-")
    assert judge("s", none, _table([1.0, 2.0]), theory=0).status == "not judged"


def test_pooled_mean_is_inverse_variance_weighted():
    m, se = pooled_mean([1.0, 3.0], [1.0, 2.0])
    assert m == pytest.approx((1 + 3 / 4) / (1 + 1 / 4)) and se == pytest.approx(1 / math.sqrt(1.25))


def test_slope_standard_error_against_the_textbook_formula():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 50)
    y = 2 * x + rng.normal(0, 0.1, 50)
    slope, se = slope_with_se(x, y)
    resid = y - np.polyval(np.polyfit(x, y, 1), x)
    assert se == pytest.approx(math.sqrt(resid @ resid / 48 / ((x - x.mean()) ** 2).sum()))
    slope_w, se_w = slope_with_se(x, y, np.full(50, 0.1))
    assert slope_w == pytest.approx(slope) and se_w == pytest.approx(0.1 / math.sqrt(((x - x.mean()) ** 2).sum()))


def test_bad_claim_declarations_are_refused():
    with pytest.raises(ValueError, match="comparison"):
        Claim("c", lambda d, t: None, "-", comparison="near")
    with pytest.raises(ValueError, match="k, floor"):
        Claim("c", lambda d, t: None, "-", k=-1)


def test_line_fit_against_numpy_weighted_polyfit():
    rng = np.random.default_rng(2)
    x = np.array([1 / 20, 1 / 30, 1 / 40, 1 / 60])
    s = np.array([0.02, 0.015, 0.01, 0.012])
    y = 1.0 + 1.5 * x + rng.normal(0, s)
    b, se_b, a, se_a = line_fit(x, y, s)
    (pb, pa), cov = np.polyfit(x, y, 1, w=1.0 / s, cov="unscaled")
    assert (b, a) == pytest.approx((pb, pa), rel=1e-10)
    assert (se_b, se_a) == pytest.approx((math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1])), rel=1e-10)
