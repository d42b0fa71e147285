"""The clone engine (:mod:`clonesim.engine.kernel`) under therapy: triggers, the fork, theory,
the exact reference engine, and the output tables.

The rules are those of the docstring of :mod:`clonesim.therapy`. Expected values come
from timings fixed by the configs (trigger days, sampling days, dosing), from the
pharmacodynamic formulas worked out by hand in each test, and from the closed-form
laws of the linear birth-death process with piecewise-constant rates b(t), d(t)
(Kendall 1948). From one cell, with m(t) = exp(int_0^t (b - d)),

    E N(t) = m(t),   E N(t)(N(t) - 1) = 2 m(t)^2 int_0^t b(u) / m(u) du,
    P(N(t) = 0) = d (e^{rt} - 1) / (b e^{rt} - d)   (constant rates, r = b - d),

and N0 cells are N0 independent such lineages. Within a step the clone engine moves
a compartment by that exact law, so without mutation or switching it is exact at
step ends for any dt.

Statistical checks use fixed seeds and a tolerance of Z_TOLERANCE = 4 standard errors
(exact standard errors where the variance is known, else the sample's); distributions
use two-sample KS tests (scipy.stats.ks_2samp) or chi-square tests at
P_THRESHOLD = 1e-4, proportions a two-proportion z test at 4 standard errors.
Quantities decided on the step grid are allowed one step (dt) on top. Runs use one
numba thread (the thread-count test switches to two and back).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import polars as pl
import pytest
from scipy import stats

import clonesim
from clonesim.config import config_from_mapping
from clonesim.engine import kernel, runner
from clonesim.engine.reference import simulate_reference_many
from clonesim.model import compile_model
from clonesim.model.compiled import (
    TRIGGER_AFTER_DAYS,
    TRIGGER_BURDEN_ABOVE,
    TRIGGER_BURDEN_BELOW,
    TRIGGER_CTDNA,
    TRIGGER_DAY,
    TRIGGER_PROGRESSION,
)
from therapy_cases import OFF as _OFF
from therapy_cases import ON as _ON
from therapy_cases import SHUT_IC50, SHUT_SIGNAL, ctdna_model
from therapy_cases import declining_model as _declining_model
from therapy_cases import piecewise_moments as _piecewise_moments
from therapy_cases import switch_model as _switch_model

from conftest import P_THRESHOLD, Z_TOLERANCE, assert_z, cells_at

START = 0  # phase_reason code of the first phase


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The machine is shared: run on one numba thread (results do not depend on it)."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def _config(**sections):
    data = {"name": "therapy-engine-test"}
    data.update(sections)
    return config_from_mapping(data)


def _model(**sections):
    return compile_model(_config(**sections))


def _run(model, seed: int, replicates, schedules=None) -> runner.BlockResult:
    if isinstance(replicates, int):
        replicates = range(replicates)
    return runner.run_block(model, seed, replicates, schedules=schedules)


def _phase_changes(block, row: int) -> list[tuple[float, int, int]]:
    """(day, phase index entered, reason code) of one output row."""
    count = block.phase_change_rows[row]
    return [(float(block.phase_day[row, i]), int(block.phase_index[row, i]),
             int(block.phase_reason[row, i])) for i in range(count)]


def _trajectory(block, row: int, until: float = math.inf) -> list[tuple[float, int, int, int]]:
    """(day, genotype, phenotype, cells) rows of one output row, up to day ``until``."""
    rows = block.trajectory_rows[row]
    return [(float(block.traj_day[row, i]), int(block.traj_genotype[row, i]),
             int(block.traj_phenotype[row, i]), int(block.traj_cells[row, i]))
            for i in range(rows) if block.traj_day[row, i] <= until + 1e-9]


def _same_distribution(engine, reference, what: str) -> None:
    """Two-sample KS test at P_THRESHOLD (conservative for values on the step grid)."""
    engine, reference = np.asarray(engine, float), np.asarray(reference, float)
    p = stats.ks_2samp(engine, reference).pvalue
    assert p > P_THRESHOLD, (
        f"{what}: KS p = {p:.2e}; means {engine.mean():.4g} vs {reference.mean():.4g} "
        f"(n = {engine.size}, {reference.size})"
    )


def _same_proportion(engine, reference, what: str) -> None:
    """Two-proportion z test: |p1 - p2| <= Z_TOLERANCE pooled standard errors."""
    engine, reference = np.asarray(engine, bool), np.asarray(reference, bool)
    p1, p2 = engine.mean(), reference.mean()
    pooled = (engine.sum() + reference.sum()) / (engine.size + reference.size)
    se = math.sqrt(pooled * (1 - pooled) * (1 / engine.size + 1 / reference.size))
    if se == 0.0:
        assert p1 == p2, f"{what}: {p1} vs {p2}"
        return
    assert abs(p1 - p2) <= Z_TOLERANCE * se, f"{what}: {p1:.4f} vs {p2:.4f} (se {se:.4f})"


# ================================================================= 1. triggers on known days


def test_day_trigger_on_a_non_grid_day():
    """``day: 7.5`` with dt = 1: 7.5 is a step point, so A runs [0, 7.5) and B [7.5, 12).

    Every replicate changes phase at exactly 7.5 (reason ``day``); A is dosed on days
    0..7 (8 doses), B at 7.5, 8.5, .., 11.5 (5). E N(12) = 200 e^{-0.4 x 7.5 + 0.4 x 4.5}
    (exact variance from the module doc); switching at the grid point 8 instead would
    give 200 e^{-1.6}, 30 % lower (~40 standard errors).
    """
    n = 2000
    model = _switch_model(12.0)
    block = _run(model, 101, n, schedules=[0])
    for row in range(n):
        assert _phase_changes(block, row) == [(0.0, 0, START), (7.5, 1, TRIGGER_DAY)]
    np.testing.assert_array_equal(block.drug_days, np.tile([8.0, 5.0], (n, 1)))
    assert (block.status == kernel.STATUS_ALIVE).all()
    mean, var = _piecewise_moments(200, [_ON[0], _OFF[0]], [_ON[1], _OFF[1]], [7.5, 4.5])
    assert_z(block.final_cells.mean(), mean, math.sqrt(var / n), "E N(12), switch on day 7.5")
    # Day 7 (a record day) is before the switch: 200 e^{-0.4 x 7} on average.
    mean7, var7 = _piecewise_moments(200, [_ON[0]], [_ON[1]], [7.0])
    assert_z(cells_at(block, 7.0).mean(), mean7, math.sqrt(var7 / n), "E N(7) under A")


def test_after_days_in_a_repeating_schedule():
    """A repeating schedule (A for 2.5 days, nothing for 1.5) and the same as a dosing
    pattern with holidays (on 2.5, off 1.5): both give A on [0, 2.5), [4, 6.5), [8, 10.5)
    (9 daily doses) and nothing else until day 11, with phase changes at 2.5, 4, 6.5, 8,
    10.5 (reason ``after_days``) for the cycle, none for the pattern.

    Both run on the same step grid with the same exposures and the same stream, so
    replicate k is the same path, cell for cell, under the two schedules. The mean at
    day 11 follows the piecewise-constant rates (4 se).
    """
    n = 1000
    model = _switch_model(11.0)
    block = _run(model, 102, n, schedules=[1, 2])
    cycle, pulsed = np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)
    expected = [(0.0, 0, START), (2.5, 1, TRIGGER_AFTER_DAYS), (4.0, 0, TRIGGER_AFTER_DAYS),
                (6.5, 1, TRIGGER_AFTER_DAYS), (8.0, 0, TRIGGER_AFTER_DAYS),
                (10.5, 1, TRIGGER_AFTER_DAYS)]
    for row in cycle:
        assert _phase_changes(block, row) == expected
    for row in pulsed:
        assert _phase_changes(block, row) == [(0.0, 0, START)]
    assert (block.drug_days[:, 0] == 9.0).all() and (block.drug_days[:, 1] == 0.0).all()
    np.testing.assert_array_equal(block.final_cells[cycle], block.final_cells[pulsed])
    for a, b in zip(cycle[:50], pulsed[:50], strict=True):
        assert _trajectory(block, a) == _trajectory(block, b)
    on, off = [0.0, 2.5, 4.0, 6.5, 8.0, 10.5], [2.5, 4.0, 6.5, 8.0, 10.5, 11.0]
    rates = [_ON, _OFF] * 3
    mean, var = _piecewise_moments(200, [b for b, _ in rates], [d for _, d in rates],
                                   [e - s for s, e in zip(on, off, strict=True)])
    assert_z(block.final_cells[pulsed].mean(), mean, math.sqrt(var / n), "E N(11), holidays")


def _resistance_config(horizon: float, initial_cells: float = 100_000,
                       resistant_fraction: float = 0.1, dt: float = 0.1,
                       detection_cells: float = 1000):
    """Sensitive cells under tki: phi = 1, k_p = 0.8, so b ~ 0, d ~ 1.0 (r ~ -1);
    ``res`` cells (add the ``bypass`` pathway, s = 1 under tki) b = 0.3, d = 0.2 (r = 0.1).
    met shuts bypass: under tki + met every cell has r ~ -1."""
    return _config(
        time={"horizon_days": horizon, "dt_days": dt, "record_every_days": 0.5},
        tumor={"initial_cells": initial_cells, "detection_cells": detection_cells,
               "initial_fractions": {"res": resistant_fraction}},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 0.0, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                          "drug_kill_rate_per_day": 0.8, "cytostatic_share": 1.0}},
        drugs={"tki": {"targets": {"driver": {"ic50": SHUT_IC50}}},
               "met": {"targets": {"bypass": {"ic50": SHUT_IC50}}}},
        schedules={"mono": [{"drugs": ["tki"]}],
                   "sequential": [{"drugs": ["tki"], "until": "progression"},
                                  {"drugs": ["tki", "met"]}]},
    )


def test_progression_trigger_changes_line_on_the_mono_progression_day():
    """Replicate k under tki alone and under tki until progression, then tki + met.

    The two share the day-0 tumour, the stream, the rates and the step grid until the
    progression step end, so the sequential schedule changes line (reason
    ``progression``) on exactly the day tki alone progresses, on the very same path
    (identical trajectory rows up to that day). That progression is a change of line,
    not the schedule's: afterwards both pathways are shut (r ~ -1 for every cell) and
    the sequential schedule never progresses. A drug new in a phase starts its pattern
    with the phase: met is given at ttp, ttp + 1, .. < 16; tki keeps its times.
    """
    model = compile_model(_resistance_config(16.0))
    n = 20
    block = _run(model, 103, n)
    mono, seq = np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)
    assert block.progressed[mono].all() and not block.progressed[seq].any()
    assert len(set(block.ttp_days[mono])) > 1  # the day varies between replicates
    for m, s in zip(mono, seq, strict=True):
        ttp = float(block.ttp_days[m])
        assert _phase_changes(block, s) == [(0.0, 0, START), (ttp, 1, TRIGGER_PROGRESSION)]
        assert _phase_changes(block, m) == [(0.0, 0, START)]
        assert _trajectory(block, s, ttp) == _trajectory(block, m, ttp)
        assert _trajectory(block, s) != _trajectory(block, m)
        assert block.final_cells[s] < 0.02 * block.final_cells[m]
        assert block.drug_days[s, 1] == math.ceil(16.0 - ttp - 1e-9)
        assert block.drug_days[m, 0] == 16.0
        # tki is given the same way in both phases, so it keeps its daily dosing times
        # (0, 1, ..., 15) across the change; met starts its own pattern at the change.
        assert block.drug_days[s, 0] == 16.0
        assert math.isnan(block.ttp_days[s])
        assert block.nadir_cells[s] <= block.nadir_cells[m]


@pytest.mark.parametrize("dt", [1.0, 3.0])
def test_ctdna_detection_on_a_known_sampling_day(dt):
    """Limit 1 %: detected when N <= 5000, i.e. sensitive cells S <= 4900.

    S(t) ~ Binomial(19900, e^{-0.1 t}) (pure death: exact for any step): at the day-10
    sample S ~ 7320 +- 60 (not detected, 40 sd away), at day 20 S ~ 2690 +- 45
    (detected), so every replicate detects on day 20 and adds met then. With dt = 3 the
    sampling days 10 and 20 are step points off the grid (9, 12, 18, 21, ..): the
    sample is still taken on those days. tki: 20 doses in phase 1 and 10 in phase 2.
    """
    n = 200
    block = _run(ctdna_model(0.01, dt, record_every_days=dt), 104, n)
    for row in range(n):
        assert _phase_changes(block, row) == [(0.0, 0, START), (20.0, 1, TRIGGER_CTDNA)]
    assert (block.mechanism_ctdna_day[:, 0] == 20.0).all()
    np.testing.assert_array_equal(block.drug_days, np.tile([30.0, 10.0], (n, 1)))
    assert (block.mechanism_cells_at_start[:, 0] == 100).all()
    assert (block.mechanism_arise_day[:, 0] == 0.0).all()
    assert (block.mechanism_established_day[:, 0] == 0.0).all()
    assert np.isnan(block.mechanism_dominant_day[:, 0]).all()


def test_ctdna_detection_at_day_zero_switches_at_once():
    """Limit 0.2 % < VAF(0) = 100 / 40000 = 0.25 %: the day-0 sample detects res and the
    ctdna_detects trigger fires at the instant its phase starts: tki + met from day 0.

    Both pathways are then shut from day 0, so res cells die like the others: each of
    the 100 survives to day 30 with probability p = e^{-0.1 (1 - s) 30} (binomial, 4 se);
    had met started only on a later sample, res would keep all 100 cells.
    """
    n = 200
    block = _run(ctdna_model(0.002, 1.0, record_every_days=1.0), 105, n)
    for row in range(n):
        assert _phase_changes(block, row) == [(0.0, 0, START), (0.0, 1, TRIGGER_CTDNA)]
    assert (block.mechanism_ctdna_day[:, 0] == 0.0).all()
    np.testing.assert_array_equal(block.drug_days, np.tile([30.0, 30.0], (n, 1)))
    p = math.exp(-0.1 * (1.0 - SHUT_SIGNAL) * 30.0)
    res = cells_at(block, 30.0, genotype=1)
    assert_z(res.mean(), 100 * p, math.sqrt(100 * p * (1 - p) / n), "res cells on day 30")


def _adaptive_det_days(r_on: float, r_off: float, dt: float, horizon: float):
    """Deterministic log-burden on the grid with the adaptive rule; switch days and the
    least distance |log N - log threshold| over every grid point (the margin)."""
    x, phase, days, margin = 0.0, 0, [], math.inf
    for step in range(1, round(horizon / dt) + 1):
        x += (r_on if phase == 0 else r_off) * dt
        threshold = math.log(0.5) if phase == 0 else 0.0
        margin = min(margin, abs(x - threshold))
        if (phase == 0 and x < threshold) or (phase == 1 and x > threshold):
            phase = 1 - phase
            days.append(step * dt)
    return days, margin


def test_adaptive_burden_cycling_follows_the_exponential_solution():
    """Adaptive therapy on 10^10 cells: drug until N < 0.5 N0, pause until N > N0, repeat.

    On drug b = 0.3, d = 0.21 + 0.23 (1 - s) (r ~ -0.14); off b = 0.3, d = 0.21 (r = 0.09).
    The mean is N0 exp(int r) at every step end (exact law), and the relative sd of N
    is at most sqrt((b + d) t / (m_min N0)) = sqrt(0.74 x 40 / (0.49 x 10^10)) ~ 8e-5,
    while the deterministic log-burden stays at least ``margin`` (~2e-3, > 20 sd) from
    the thresholds at every grid point. So every replicate switches on exactly the
    deterministic grid days (dt = 0.1), alternating burden_below / burden_above.
    """
    n0, dt, horizon = 1e10, 0.1, 40.0
    model = _model(
        time={"horizon_days": horizon, "dt_days": dt, "record_every_days": 1.0},
        tumor={"initial_cells": n0},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.21,
                          "drug_kill_rate_per_day": 0.23}},
        drugs={"A": {"targets": {"driver": {"ic50": SHUT_IC50}}}},
        schedules={"adaptive": {"repeat": True, "phases": [
            {"drugs": ["A"], "until": {"burden_below": 0.5}},
            {"drugs": [], "until": {"burden_above": 1.0}}]}},
    )
    r_on, r_off = 0.3 - (0.21 + 0.23 * (1.0 - SHUT_SIGNAL)), 0.09
    det, margin = _adaptive_det_days(r_on, r_off, dt, horizon)
    sd_bound = math.sqrt(0.74 * horizon / (0.49 * n0))
    assert margin > 10 * sd_bound and len(det) >= 5, (margin, sd_bound, det)
    n = 40
    block = _run(model, 106, n)
    reasons = [TRIGGER_BURDEN_BELOW, TRIGGER_BURDEN_ABOVE] * len(det)
    expected = [(0.0, 0, START)] + [(day, (k + 1) % 2, reasons[k]) for k, day in enumerate(det)]
    for row in range(n):
        got = _phase_changes(block, row)
        assert [(p, why) for _, p, why in got] == [(p, why) for _, p, why in expected]
        np.testing.assert_allclose([d for d, _, _ in got], [d for d, _, _ in expected],
                                   rtol=0, atol=1e-9)
    # A record day far from a switch: the mean burden on day 30 against N0 exp(int r).
    log_m = 0.0
    for step in range(round(30.0 / dt)):
        t = step * dt
        on = sum(1 for d in det if d <= t + 1e-9) % 2 == 0
        log_m += (r_on if on else r_off) * dt
    relative = cells_at(block, 30.0) / (n0 * math.exp(log_m)) - 1.0
    assert abs(relative.mean()) <= Z_TOLERANCE * sd_bound / math.sqrt(n), relative.mean()


# ======================================================================= 2. the fork

FORK = {
    "time": {"horizon_days": 30, "dt_days": 1.0, "record_every_days": 2.0},
    "tumor": {"grow_from_single_cell_to": 2e4, "detection_cells": 100},
    "pathways": ["driver", "bypass"],
    "alterations": {"res": {"mutation_rate_per_division": 2e-4, "adds_pathway": "bypass"},
                    "other": {"mutation_rate_per_division": 1e-4}},
    "phenotypes": {
        "s": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.2,
              "drug_kill_rate_per_day": 0.6, "cytostatic_share": 0.5},
        "persister": {"birth_rate_per_day": 0.05, "death_rate_per_day": 0.02,
                      "mutation_rate_multiplier": 5},
    },
    "switching": [{"from": "s", "to": "persister", "rate_per_day": 1e-3,
                   "drug_induced_rate_per_day": 0.02},
                  {"from": "persister", "to": "s", "rate_per_day": 0.1}],
    "drugs": {"tki": {"targets": {"driver": {"ic50": 0.01}}, "half_life_days": 1.5},
              "met": {"targets": {"bypass": {"ic50": 0.05}}}},
    "events": {"established_cells": 50, "ctdna": {"every_days": 7,
                                                  "detection_limit_vaf": 1e-3}},
    "schedules": {
        "none": [{"drugs": []}],
        "mono": [{"drugs": ["tki"]}],
        "stop_day_10": [{"drugs": ["tki"], "until": {"day": 10}}, {"drugs": []}],
        "sequential": [{"drugs": ["tki"], "until": "progression"}, {"drugs": ["tki", "met"]}],
        "guided": [{"drugs": ["tki"], "until": {"ctdna_detects": "res"}},
                   {"drugs": ["tki", "met"]}],
        "adaptive": {"repeat": True, "phases": [
            {"drugs": ["tki"], "until": {"burden_below": 0.5}},
            {"drugs": [], "until": {"burden_above": 1.0}}]},
    },
}


@pytest.fixture(scope="module")
def fork_model():
    return compile_model(_config(**FORK))


def _row_outputs(block, row: int) -> dict[str, object]:
    """Every output of one (replicate, schedule) row, buffers trimmed to their used rows."""
    t, p = block.trajectory_rows[row], block.phase_change_rows[row]
    return {
        "int_out": block.int_out[row], "float_out": block.float_out[row],
        "drug_days": block.drug_days[row],
        "mechanism_cells_at_start": block.mechanism_cells_at_start[row],
        "mechanism_days": block.mechanism_days[row],
        "traj_day": block.traj_day[row, :t], "traj_genotype": block.traj_genotype[row, :t],
        "traj_phenotype": block.traj_phenotype[row, :t], "traj_cells": block.traj_cells[row, :t],
        "phase_day": block.phase_day[row, :p], "phase_index": block.phase_index[row, :p],
        "phase_reason": block.phase_reason[row, :p],
        "replicate": block.replicates[row], "schedule": block.schedules[row],
    }


def _assert_rows_equal(a, row_a: int, b, row_b: int, what: str) -> None:
    left, right = _row_outputs(a, row_a), _row_outputs(b, row_b)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=f"{what}: {name}")


def test_every_schedule_starts_from_the_same_day_zero_tumour(fork_model):
    """Pre-growth from one cell to 2 x 10^4 cells, forked into six schedules.

    For each replicate, every schedule sees the same tumour at day 0, bit for bit:
    days_to_diagnosis, the day-0 trajectory rows, cells_at_start, and the arise days of
    the mechanisms present at day 0 (<= 0: before diagnosis). Schedules that give the
    same drugs share their random numbers until they diverge: ``stop_day_10`` is the
    same path as ``mono`` up to day 10, and differs after.
    """
    n = 24
    num_schedules = len(fork_model.schedule_names)
    block = _run(fork_model, 107, n)
    assert (block.status < kernel.STATUS_FIRST_ERROR).all()
    pre_existing = 0
    for k in range(n):
        rows = np.arange(k * num_schedules, (k + 1) * num_schedules)
        assert (block.replicates[rows] == k).all()
        first = rows[0]
        diagnosis = block.days_to_diagnosis[first]
        assert diagnosis > 0.0
        day0 = _trajectory(block, first, 0.0)
        assert sum(cells for *_, cells in day0) >= 2e4
        present = block.mechanism_cells_at_start[first] > 0
        pre_existing += present[:2].any()
        for row in rows[1:]:
            assert block.days_to_diagnosis[row] == diagnosis
            assert _trajectory(block, row, 0.0) == day0
            np.testing.assert_array_equal(block.mechanism_cells_at_start[row],
                                          block.mechanism_cells_at_start[first])
            np.testing.assert_array_equal(block.mechanism_arise_day[row][present],
                                          block.mechanism_arise_day[first][present])
        assert (block.mechanism_arise_day[first][present] <= 0.0).all()
        assert (block.mechanism_arise_day[first][present] >= -diagnosis).all()
        mono, stop = rows[1], rows[2]
        assert _trajectory(block, stop, 10.0) == _trajectory(block, mono, 10.0)
        if block.final_cells[mono] > 0:
            assert _trajectory(block, stop) != _trajectory(block, mono)
    assert pre_existing >= n // 4  # u N log N ~ 2e-4 x 2e4 x 10: most tumours carry some
    assert len(set(block.days_to_diagnosis[::num_schedules])) > n // 2


def test_a_schedule_result_does_not_depend_on_company_block_or_threads(fork_model):
    """Row (k, j) is bit-identical whether schedule j runs alone (schedules=[j]), with the
    other schedules, for replicate k alone or in a block of any size, on 1 or 2 threads."""
    n = 16
    num_schedules = len(fork_model.schedule_names)
    whole = _run(fork_model, 108, n)
    for j in range(num_schedules):
        alone = _run(fork_model, 108, n, schedules=[j])
        for k in range(n):
            _assert_rows_equal(whole, k * num_schedules + j, alone, k, f"schedule {j} alone")
    single = _run(fork_model, 108, [7], schedules=[4])
    _assert_rows_equal(whole, 7 * num_schedules + 4, single, 0, "replicate 7, schedule 4 alone")
    reordered = [num_schedules - 1, 0, 3]
    subset = _run(fork_model, 108, [11, 3], schedules=reordered)
    for r, (k, j) in enumerate((k, j) for k in (11, 3) for j in reordered):
        _assert_rows_equal(whole, k * num_schedules + j, subset, r, "subset")
    blocks = list(runner.iterate_blocks(fork_model, 108, range(n), block_size=num_schedules * 3))
    assert len(blocks) > 1
    offset = 0
    for block in blocks:
        for r in range(len(block.replicates)):
            _assert_rows_equal(whole, offset + r, block, r, "small blocks")
        offset += len(block.replicates)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        numba.set_num_threads(2)
        try:
            two = _run(fork_model, 108, n)
        finally:
            numba.set_num_threads(1)
        for r in range(n * num_schedules):
            _assert_rows_equal(whole, r, two, r, "2 threads")


# =========================================================== 3. statistics against theory


def test_resistant_clone_nadir_and_ttp_follow_the_two_type_solution():
    """10^7 cells, 10^-3 resistant (10^4 res cells): N(t) = S0 e^{r_s t} + R0 e^{0.1 t} with
    r_s ~ -1 (S0 = 9.99 x 10^6). On the grid (dt = 0.25) the nadir (~2.5 x 10^4) is near
    day 8.4 and progression (N >= 1.2^3 x nadir) near day 14.8.

    The path fluctuates with res's early growth (relative sd ~ sqrt((b + d) / (r R0))
    ~ 2 %, ~0.2 days of ttp) and, for the nadir day, along a flat minimum: the mean
    days must match within 4 standard errors (sample spread) plus one step. Every
    replicate progresses with res as the mechanism; its best response is PR.
    """
    horizon, dt, n = 20.0, 0.25, 400
    model = compile_model(_resistance_config(horizon, 1e7, 1e-3, dt))
    s0, r0 = 1e7 - 1e4, 1e4
    rs = 0.3 * SHUT_SIGNAL - (0.2 + 0.8 * (1.0 - SHUT_SIGNAL))
    grid = np.arange(0, round(horizon / dt) + 1) * dt
    burden = s0 * np.exp(rs * grid) + r0 * np.exp(0.1 * grid)
    nadir = np.minimum.accumulate(burden)
    progression = np.flatnonzero(burden >= 1.2**3 * nadir)
    det_ttp = grid[progression[0]]
    det_nadir_day = grid[np.argmin(burden[: progression[0]])]
    assert 8.0 < det_nadir_day < 9.0 and 14.0 < det_ttp < 16.0

    block = _run(model, 109, n, schedules=[0])
    assert block.progressed.all()
    assert (block.mechanism_at_progression == 0).all()
    assert (block.best_response == kernel.RESPONSE_PR).all()
    for what, values, expected in (("ttp", block.ttp_days, det_ttp),
                                   ("nadir day", block.nadir_day, det_nadir_day)):
        se = values.std(ddof=1) / math.sqrt(n)
        assert abs(values.mean() - expected) <= Z_TOLERANCE * se + dt, (
            f"{what}: mean {values.mean():.3f} vs deterministic {expected:.3f} (se {se:.3f})")
    # Shares at progression: res is ~100 % of the burden (S ~ 10^7 e^{-14.8} ~ 4 cells).
    assert (block.mechanism_share_at_progression > 0.99).all()


def test_extinction_by_each_step_matches_linear_birth_death():
    """5 cells, b = 0.3, d ~ 0.5 under drug, horizon 10 days, dt = 1.

    P(extinct by t) = p0(t)^5, p0(t) = d (e^{rt} - 1) / (b e^{rt} - d) (0.738 by day 10).
    The engine reports extinction at the end of the step where it happens, so the
    stop days are integers k with P(stop <= k) = p0(k)^5: a chi-square goodness-of-fit
    test over the days 1..10 and "alive" (p > 1e-4), and a z test on the total.
    """
    n0, n, horizon = 5, 20_000, 10
    b, d = 0.3, 0.1 + 0.4 * (1.0 - SHUT_SIGNAL)
    r = b - d

    def p0(t):
        e = math.exp(r * t)
        return d * (e - 1.0) / (b * e - d)

    block = _run(_declining_model(float(horizon), n0), 110, n)
    extinct = block.status == kernel.STATUS_EXTINCT
    assert ((block.status == kernel.STATUS_ALIVE) | extinct).all()
    p = p0(horizon) ** n0
    assert_z(extinct.mean(), p, math.sqrt(p * (1 - p) / n), "P(extinct by day 10)")
    stop = block.stop_day[extinct]
    assert (stop == np.round(stop)).all()
    cdf = np.array([p0(k) ** n0 for k in range(horizon + 1)])
    expected = np.append(np.diff(cdf), 1.0 - cdf[-1]) * n
    observed = np.append(np.bincount(stop.astype(int), minlength=horizon + 1)[1:],
                         (~extinct).sum())
    assert stats.chisquare(observed, expected).pvalue > P_THRESHOLD, (observed, expected)
    assert (block.nadir_cells[extinct] == 0).all() and (block.final_cells[extinct] == 0).all()
    np.testing.assert_array_equal(block.nadir_day[extinct], stop)
    assert (block.best_response == kernel.RESPONSE_CR).all() and not block.progressed.any()


def test_constant_exposure_growth_follows_hand_computed_rates():
    """Four drugs at constant exposure on two genotypes (founder, and ``byp`` adding the
    ``bypass`` pathway), 1000 cells each, horizon 10, no mutation (exact for any dt).

    driver: tki (Imax 0.8, IC50 1, Hill 1) at 1 -> h = 0.8 x 1/2 = 0.4;
            co (Imax 0.5, IC50 2, Hill 2) at 1 -> x^2 = 0.25, h = 0.5 x 0.25/1.25 = 0.1;
            Bliss: 1 - I = 0.6 x 0.9 = 0.54.
    bypass: met (Imax 0.9, IC50 0.5) given 0.25 daily -> x = 0.5, h = 0.3, 1 - I = 0.7.
    Signals (bypass rule, max over active pathways): founder 0.54, byp max(0.54, 0.7) = 0.7.
    killer: extra death 0.2 at exposure 1, H(c) = c^2 / (0.5^2 + c^2), given 3.0 every
    2 days (no half-life) -> exposure 1.5, H(1.5)/H(1) = 0.9/0.8 = 1.125 -> +0.225.
    b_p = 1, d_p = 0.3, k_p = 0.5, phi = 0.5:
      founder b = 1 - 0.5 x 0.46 = 0.77, d = 0.3 + 0.5 x 0.46 + 0.225 = 0.755 (r 0.015);
      byp     b = 1 - 0.5 x 0.30 = 0.85, d = 0.3 + 0.5 x 0.30 + 0.225 = 0.675 (r 0.175).
    Wrong readings sit far off: min instead of max over pathways (byp r = 0.015), no
    H ratio (r + 0.045), additive instead of Bliss on the driver (founder r = -0.025),
    no cytostatic share (b = 1): each moves E N(10) by > 30 %, > 100 standard errors.
    """
    n, horizon = 3000, 10.0
    model = _model(
        time={"horizon_days": horizon, "dt_days": 1.0, "record_every_days": 5.0},
        tumor={"initial_cells": 2000, "detection_cells": 1,
               "initial_fractions": {"byp": 0.5}},
        pathways=["driver", "bypass"],
        alterations={"byp": {"mutation_rate_per_division": 0.0, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.3,
                          "drug_kill_rate_per_day": 0.5, "cytostatic_share": 0.5}},
        drugs={"tki": {"targets": {"driver": {"ic50": 1.0, "hill": 1.0,
                                              "max_inhibition": 0.8}}},
               "co": {"targets": {"driver": {"ic50": 2.0, "hill": 2.0,
                                             "max_inhibition": 0.5}}},
               "met": {"targets": {"bypass": {"ic50": 0.5, "max_inhibition": 0.9}}},
               "killer": {"extra_death_per_day": {"s": 0.2}, "extra_death_ic50": 0.5,
                          "extra_death_hill": 2.0}},
        schedules={"all": [{"drugs": ["tki", "co", {"name": "met", "dose": 0.25},
                                      {"name": "killer", "dose": 3.0, "every_days": 2}]}]},
    )
    block = _run(model, 111, n)
    assert (block.mechanism_cells_at_start[:, 0] == 1000).all()
    np.testing.assert_array_equal(block.drug_days[0], [10.0, 10.0, 2.5, 15.0])
    for genotype, b, d in ((0, 0.77, 0.755), (1, 0.85, 0.675)):
        for t in (5.0, 10.0):
            cells = cells_at(block, t, genotype=genotype)
            mean, var = _piecewise_moments(1000, [b], [d], [t])
            assert_z(cells.mean(), mean, math.sqrt(var / n), f"E N_{genotype}({t:g})")


def test_half_life_exposure_ramp_follows_per_step_exposures():
    """Daily dosing with a 2-day half-life until ``day: 5``, then none; dt = 0.5.

    One compartment, k = ln 2 / 2: a dose adds k to the concentration c at the start
    of a day; over a half-day step the mean exposure is c (1 - e^{-k/2}) / (k/2) and c
    ends at c e^{-k/2}. The exposure ramps up from 0.32 and washes out after day 5
    (concentration carries over between phases). Each step has signal
    s = 1 / (1 + c / 0.5) and rates b = 0.4 s (phi = 1), d = 0.1 + 0.6 (1 - s); the mean
    is the product of per-step exponentials (exact variance from the module doc).
    With constant exposure 1 instead (no PK) E N(5) would be half as large (~100 se).
    """
    n0, n, horizon, dt = 100, 2000, 10.0, 0.5
    model = _model(
        time={"horizon_days": horizon, "dt_days": dt, "record_every_days": 2.5},
        tumor={"initial_cells": n0, "detection_cells": 1},
        phenotypes={"s": {"birth_rate_per_day": 0.4, "death_rate_per_day": 0.1,
                          "drug_kill_rate_per_day": 0.6, "cytostatic_share": 1.0}},
        drugs={"tki": {"targets": {"driver": {"ic50": 0.5}}, "half_life_days": 2.0}},
        schedules={"stop_at_5": [{"drugs": ["tki"], "until": {"day": 5}}, {"drugs": []}]},
    )
    k = math.log(2.0) / 2.0
    c, births, deaths = 0.0, [], []
    for step in range(round(horizon / dt)):
        start = step * dt
        if start < 5.0 and start == math.floor(start):
            c += k  # a standard dose at the start of each day while the phase lasts
        mean = c * -math.expm1(-k * dt) / (k * dt)
        c *= math.exp(-k * dt)
        s = 1.0 / (1.0 + mean / 0.5)
        births.append(0.4 * s)
        deaths.append(0.1 + 0.6 * (1.0 - s))
    block = _run(model, 112, n)
    assert (block.drug_days[:, 0] == 5.0).all()
    for row in range(n):
        assert _phase_changes(block, row) == [(0.0, 0, START), (5.0, 1, TRIGGER_DAY)]
    for t in (2.5, 5.0, 7.5, 10.0):
        steps = round(t / dt)
        mean, var = _piecewise_moments(n0, births[:steps], deaths[:steps], [dt] * steps)
        assert_z(cells_at(block, t).mean(), mean, math.sqrt(var / n), f"E N({t:g}) with PK")


# ================================================== 4. clone engine vs the reference engine


def _compare(block, reference, what: str, first_change: bool = True) -> None:
    """KS on final cells, ttp (of those that progressed) and the first phase change day;
    z tests on the progressed and extinct proportions."""
    _same_distribution(block.final_cells, [r.final_cells for r in reference],
                       f"{what}: final cells")
    engine_ttp = block.ttp_days[block.progressed]
    reference_ttp = [r.ttp_days for r in reference if r.progressed]
    _same_proportion(block.progressed, [r.progressed for r in reference], f"{what}: progressed")
    _same_distribution(engine_ttp, reference_ttp, f"{what}: ttp")
    _same_proportion(block.status == kernel.STATUS_EXTINCT,
                     [r.status == "extinct" for r in reference], f"{what}: extinct")
    if first_change:
        changed = block.phase_change_rows > 1
        _same_proportion(changed, [len(r.phase_changes) > 1 for r in reference],
                         f"{what}: changed phase")
        _same_distribution(block.phase_day[changed, 1],
                           [r.phase_changes[1][0] for r in reference if len(r.phase_changes) > 1],
                           f"{what}: first phase change day")
    _same_distribution(block.nadir_cells, [r.nadir_cells for r in reference],
                       f"{what}: nadir cells")


def test_day_switch_to_a_holiday_matches_the_reference_engine():
    """20 cells under a partial drug (IC50 0.05: s = 1/21) with drug-induced persisters
    (0.03 (1 - s) per day), until ``day: 6.1`` (off the dt = 0.25 grid), then no drug: the
    survivors regrow and persisters revert (rate 0.3 s). Under drug b = 0.26, d = 0.67
    (r ~ -0.41): ~20 % of replicates go extinct, ~60 % progress on regrowth (detection
    20 cells). Engine (dt = 0.25) vs Gillespie, 800 replicates each."""
    model = _model(
        time={"horizon_days": 15.0, "dt_days": 0.25, "record_every_days": 0.25},
        tumor={"initial_cells": 20, "detection_cells": 20},
        phenotypes={"s": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.1,
                          "drug_kill_rate_per_day": 0.6, "cytostatic_share": 0.5},
                    "persister": {"birth_rate_per_day": 0.05, "death_rate_per_day": 0.02}},
        switching=[{"from": "s", "to": "persister", "rate_per_day": 0.0,
                    "drug_induced_rate_per_day": 0.03},
                   {"from": "persister", "to": "s", "rate_per_day": 0.3}],
        drugs={"A": {"targets": {"driver": {"ic50": 0.05}}}},
        schedules={"holiday": [{"drugs": ["A"], "until": {"day": 6.1}}, {"drugs": []}]},
    )
    n = 800
    block = _run(model, 113, n)
    reference = simulate_reference_many(model, 113, n)
    _compare(block, reference, "day switch")
    changed = block.phase_change_rows > 1
    assert (block.phase_day[changed, 1] == 6.1).all()
    assert (block.phase_reason[changed, 1] == TRIGGER_DAY).all()
    assert 0.05 < (block.status == kernel.STATUS_EXTINCT).mean() < 0.5
    assert 0.3 < block.progressed.mean() < 0.9


def test_sequential_progression_trigger_matches_the_reference_engine():
    """2000 cells with 5 pre-existing ``res`` cells (adds ``bypass``, s = 1 under tki):
    tki until progression, then tki + met. met only partly closes bypass (Imax 0.5,
    IC50 1: h = 0.25, s_res = 0.75), and ``esc`` (mutation 5e-3 per division) makes met
    useless (IC50 x 1000), so some replicates progress again on the second line.

    Under tki sensitive cells have b ~ 0, d ~ 1.1; res b = 0.5, d = 0.3 (r = 0.2), lost in
    (0.3 / 0.5)^5 ~ 8 % of replicates; under tki + met res has b = 0.375, d = 0.5
    (r = -0.125), res + esc r = 0.2. About 93 % change line (near day 13), 30 % progress
    on the second line, 40 % go extinct. Engine (dt = 0.1) vs Gillespie, 600 replicates
    each: final cells, nadir, the line change day (the first phase change), schedule
    ttp, progressed and extinct shares.
    """
    model = _model(
        time={"horizon_days": 40.0, "dt_days": 0.1, "record_every_days": 1.0},
        tumor={"initial_cells": 2000, "detection_cells": 50,
               "initial_fractions": {"res": 0.0025}},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 0.0, "adds_pathway": "bypass"},
                     "esc": {"mutation_rate_per_division": 5e-3,
                             "ic50_fold": {"met": 1000.0}}},
        phenotypes={"s": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.3,
                          "drug_kill_rate_per_day": 0.8, "cytostatic_share": 1.0}},
        drugs={"tki": {"targets": {"driver": {"ic50": SHUT_IC50}}},
               "met": {"targets": {"bypass": {"ic50": 1.0, "max_inhibition": 0.5}}}},
        schedules={"sequential": [{"drugs": ["tki"], "until": "progression"},
                                  {"drugs": ["tki", "met"]}]},
    )
    n = 600
    block = _run(model, 114, n)
    reference = simulate_reference_many(model, 114, n)
    _compare(block, reference, "sequential")
    changed = block.phase_change_rows > 1
    assert (block.phase_reason[changed, 1] == TRIGGER_PROGRESSION).all()
    assert 0.8 < changed.mean() < 0.98
    assert 0.1 < block.progressed.mean() < 0.6
    assert 0.2 < (block.status == kernel.STATUS_EXTINCT).mean() < 0.7


def test_adaptive_cycle_matches_the_reference_engine():
    """Adaptive therapy on 1000 cells: drug until N < 0.5 N0, pause until N > N0, repeat.
    On drug r ~ -0.14, off r = +0.09 (as in the large-population test); a ``res`` clone
    arising at 1e-4 per division escapes the drug. RECIST progression against the nadir
    (~500) comes during a regrowth (N >= 864). Engine (dt = 0.1) vs Gillespie, 400
    replicates each, over 30 days; also the second phase change day and the number of
    phase changes (chi-square)."""
    model = _model(
        time={"horizon_days": 30.0, "dt_days": 0.1, "record_every_days": 1.0},
        tumor={"initial_cells": 1000, "detection_cells": 100},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 1e-4, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.21,
                          "drug_kill_rate_per_day": 0.23}},
        drugs={"A": {"targets": {"driver": {"ic50": SHUT_IC50}}}},
        schedules={"adaptive": {"repeat": True, "phases": [
            {"drugs": ["A"], "until": {"burden_below": 0.5}},
            {"drugs": [], "until": {"burden_above": 1.0}}]}},
    )
    n = 400
    block = _run(model, 115, n)
    reference = simulate_reference_many(model, 115, n)
    _compare(block, reference, "adaptive")
    second = block.phase_change_rows > 2
    _same_distribution(block.phase_day[second, 2],
                       [r.phase_changes[2][0] for r in reference if len(r.phase_changes) > 2],
                       "adaptive: second phase change day")
    counts = np.array([block.phase_change_rows, [len(r.phase_changes) for r in reference]])
    values = np.unique(counts)
    table = np.array([[np.sum(row == v) for v in values] for row in counts])
    table = table[:, table.sum(axis=0) >= 10]
    if table.shape[1] > 1:
        assert stats.chi2_contingency(table).pvalue > P_THRESHOLD, table
    assert block.progressed.mean() > 0.5


# ============================================================================ 5. the tables


def test_simulate_tables_with_two_schedules():
    """clonesim.simulate on a small config with two schedules and a phenotype mechanism."""
    config = _config(
        time={"horizon_days": 40, "dt_days": 0.5, "record_every_days": 5},
        tumor={"initial_cells": 5000, "detection_cells": 200,
               "initial_fractions": {"res": 0.002, "persister": 0.01}},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 1e-4, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                          "drug_kill_rate_per_day": 0.6, "cytostatic_share": 1.0},
                    "persister": {"birth_rate_per_day": 0.02, "death_rate_per_day": 0.01}},
        switching=[{"from": "s", "to": "persister", "rate_per_day": 0.0,
                    "drug_induced_rate_per_day": 0.01},
                   {"from": "persister", "to": "s", "rate_per_day": 0.05}],
        drugs={"tki": {"targets": {"driver": {"ic50": SHUT_IC50}}},
               "met": {"targets": {"bypass": {"ic50": SHUT_IC50}}}},
        events={"established_cells": 100, "ctdna": {"every_days": 10,
                                                    "detection_limit_vaf": 0.002}},
        schedules={"mono": [{"drugs": ["tki"]}],
                   "sequential": [{"drugs": ["tki"], "until": "progression"},
                                  {"drugs": ["tki", "met"]}]},
    )
    n = 30
    result = clonesim.simulate(config, replicates=n, seed=116, threads=1)
    patients = result.patients
    assert patients.height == 2 * n
    pairs = patients.select(pl.col("schedule").cast(pl.String), "replicate").rows()
    assert sorted(pairs) == sorted((s, k) for s in ("mono", "sequential") for k in range(n))
    assert set(patients["best_response"].cast(pl.String).to_list()) <= {"CR", "PR", "SD", "PD"}
    null_mechanism = patients["mechanism_at_progression"].is_null()
    assert (null_mechanism == ~patients["progressed"]).all()
    assert patients["progressed"].any() and (~patients["progressed"]).any()
    assert patients.filter(pl.col("progressed"))["ttp_days"].is_not_null().all()
    assert patients.filter(~pl.col("progressed"))["ttp_days"].is_null().all()
    assert {"drug_days_tki", "drug_days_met"} <= set(patients.columns)
    mono = patients.filter(pl.col("schedule") == "mono")
    assert (mono["drug_days_tki"] == 40.0).all() and (mono["drug_days_met"] == 0.0).all()
    assert patients["days_to_diagnosis"].is_null().all()

    phases = result.phase_changes
    firsts = phases.group_by("schedule", "replicate").agg(
        pl.col("day").first(), pl.col("phase").first(), pl.col("reason").first().cast(pl.String))
    assert firsts.height == 2 * n
    assert (firsts["day"] == 0.0).all() and (firsts["phase"] == 1).all()
    assert (firsts["reason"] == "start").all()
    later = phases.filter(pl.col("reason").cast(pl.String) != "start")
    assert later.height > 0
    assert (later["schedule"].cast(pl.String) == "sequential").all()
    assert (later["reason"].cast(pl.String) == "progression").all()
    assert (later["phase"] == 2).all() and (later["drugs"].cast(pl.String) == "tki+met").all()

    emergence = result.emergence
    assert emergence.height == 2 * n * 2  # mechanisms: res, persister
    persister = emergence.filter(pl.col("mechanism") == "persister")
    assert persister["ctdna_detect_day"].is_null().all()
    assert (persister["cells_at_start"] == 50).all() and (persister["arise_day"] == 0.0).all()
    res = emergence.filter(pl.col("mechanism") == "res")
    # 4950 x 0.002 = 9.9 founder-phenotype and 50 x 0.002 = 0.1 persister res cells,
    # each stochastically rounded.
    assert res["cells_at_start"].is_between(9, 11).all()
    assert res["ctdna_detect_day"].is_not_null().any()
    trajectories = result.trajectories
    day0 = trajectories.filter(pl.col("day") == 0.0).group_by("schedule", "replicate").agg(
        pl.col("cells").sum())
    assert (day0["cells"] == 5000).all()


def test_mechanism_at_progression_is_the_one_that_regrew_not_the_residual():
    """Tolerant persisters (30 % of day 0, slowly declining under tki) outnumber a
    pre-existing resistant clone (30 cells, growing at +0.1/day: it survives with
    probability 1 - (2/3)^30) when the tumour progresses,
    yet the clone made the regrowth: it is the mechanism at progression, the
    persisters (the residual) are not. Its share is its cells over the burden, < 1/2 here.
    Both engines agree."""
    config = _config(
        time={"horizon_days": 90.0, "dt_days": 0.5, "record_every_days": 10.0},
        tumor={"initial_cells": 10_000, "detection_cells": 100,
               "initial_fractions": {"persister": 0.3, "res": 3e-3}},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 0.0, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                          "drug_kill_rate_per_day": 0.8, "cytostatic_share": 1.0},
                    "persister": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.003}},
        drugs={"tki": {"targets": {"driver": {"ic50": SHUT_IC50}}}},
        schedules={"mono": [{"drugs": ["tki"]}]},
        # Progression at 1.1^3 = 1.33 x the nadir: the clone then holds ~1/4 of the burden.
        events={"progression_diameter_increase": 0.1},
    )
    model = compile_model(config)
    block = _run(model, 7, 40)
    resistant = model.mechanism_names.index("res")
    persister = model.mechanism_names.index("persister")
    assert block.progressed.all()
    assert (block.mechanism_at_progression == resistant).all()
    share = block.mechanism_share_at_progression
    assert ((share > 0.0) & (share < 0.5)).all(), share
    # ... while the persisters carry more cells at that moment than the clone does.
    assert (share < 1.0 - share - 1e-9).all()
    assert persister != resistant
    reference = simulate_reference_many(model, 7, 20)
    assert all(r.mechanism_at_progression == "res" for r in reference)
