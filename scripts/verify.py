#!/usr/bin/env python
"""Verification report: the clone engine against exact laws and the exact reference engine.

The statistical tests (``tests/test_engine_statistics.py``, ``tests/test_engine_vs_reference.py``)
check the engine at a few thousand replicates with pass/fail tolerances. This script runs the
same kinds of cases at far larger replicate counts and draws what it finds, in the spirit of
msprime's ``verification.py``. It writes one 300-dpi PNG per figure and a Markdown summary
(``README.md``) that lists every figure with the numbers it shows:

1. ``one_cell_law.png`` -- N(t) from one cell (b = 1, d = 0.5 per day, t = 3 days, dt = 0.5 day)
   against Kendall's exact law: P(0) = alpha, geometric given survival.
2. ``luria_delbruck.png`` -- pre-existing mutant cells in a tumour grown from one cell:
   (a) pure birth to N = 1000 cells (b = 1/day, u = 1e-3, dt = 0.25 day) against the exact
   law of the Yule jump chain; (b) with death (b = 1, d = 0.3, u = 3e-3, N = 300) against the
   exact Gillespie reference engine. Complementary CDFs on log-log axes.
3. ``dt_convergence.png`` -- |bias| of E[persister cells at t] (growth + switching) and of
   E[mutant cells at t] (growth + mutation) against dt, log-log, with slope-1 and slope-2
   reference lines: the splitting error and its order.
4. ``engine_vs_reference.png`` -- QQ plots of total, persister and mutant cells at day 6 for
   the mixed case of the tests (growth, death, two alterations, adaptive mutability,
   switching), engine at dt = 1 and 0.25 day against the exact reference engine.

Run (needs the ``verify`` extra: matplotlib and scipy)::

    /work/venv/bin/python scripts/verify.py              # full report into docs/verification/
    /work/venv/bin/python scripts/verify.py --quick      # smoke run into runs/verification-quick/

``--quick`` uses about 20x fewer replicates; without ``--out`` it writes into
``runs/verification-quick/`` so that a smoke run never overwrites the published report.
Every run is reproducible from ``--seed``.
"""

from __future__ import annotations

import argparse
import io
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from PIL import Image
    from scipy import stats
    from scipy.linalg import expm
except ImportError as error:  # pragma: no cover - depends on the environment
    raise SystemExit(
        f"scripts/verify.py needs the 'verify' extra ({error}): pip install -e '.[verify]'"
    ) from error

import clonesim
from clonesim.config import config_from_mapping
from clonesim.engine import kernel, runner
from clonesim.engine.reference import ReferenceResult, simulate_reference_many
from clonesim.model import compile_model
from clonesim.model.analytic import (
    expected_preexisting_mutants,
    one_cell_law,
    pure_birth_mutant_moments,
)
from clonesim.model.compiled import CompiledModel
from clonesim.model.examples import MIXED_SMALL_TUMOUR

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "verification"
QUICK_OUT = ROOT / "runs" / "verification-quick"

# Okabe & Ito (2008) colour-blind-safe palette.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#777777"

ENGINE_COLOUR = BLUE
EXACT_COLOUR = VERMILLION
REFERENCE_COLOUR = BLACK

#: Minimum expected count per bin in chi-square tests.
MIN_EXPECTED = 5.0
#: The test suite's thresholds (tests/conftest.py): results beyond them are listed as flags.
P_FLAG = 1e-4
Z_FLAG = 4.0



@dataclass(frozen=True)
class Settings:
    """Replicate counts of one report (full or quick)."""

    one_cell: int
    luria_delbruck: int
    dt_convergence: int
    engine_vs_reference: int


FULL = Settings(one_cell=400_000, luria_delbruck=100_000, dt_convergence=100_000,
                engine_vs_reference=100_000)
QUICK = Settings(one_cell=20_000, luria_delbruck=5_000, dt_convergence=4_000,
                 engine_vs_reference=5_000)


@dataclass
class Section:
    """One figure's Markdown: a title, a sentence or two, and a table of key numbers."""

    figure: str
    title: str
    text: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, what: str, p: float | None = None, z: float | None = None) -> None:
        """Flag ``what`` when it fails the tests' thresholds (p < P_FLAG or |z| > Z_FLAG)."""
        if (p is not None and p < P_FLAG) or (z is not None and abs(z) > Z_FLAG):
            detail = f"p = {fmt_p(p)}" if p is not None else f"z = {z:+.1f}"
            self.flags.append(f"{what} ({detail})")


# ============================================================================ helpers


def compiled(data: dict[str, Any]) -> CompiledModel:
    """A compiled model from a config mapping (``name`` added when missing)."""
    return compile_model(config_from_mapping({"name": "verify", **data}))


def one_type_model(b: float, d: float, horizon: float, dt: float, **tumor: Any) -> CompiledModel:
    return compiled({
        "time": {"horizon_days": horizon, "dt_days": dt, "record_every_days": horizon},
        "tumor": {"lethal_cells": 1e12, **tumor},
        "phenotypes": {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}},
    })


def run_engine(model: CompiledModel, seed: int, replicates: int) -> runner.BlockResult:
    return runner.run_block(model, seed, range(replicates))


def engine_cells(block: runner.BlockResult, day: float,
                 keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Per-replicate cells recorded at ``day``, summed over the rows that ``keep(genotype,
    phenotype)`` selects (all rows when None); 0 where nothing was recorded."""
    width = block.traj_day.shape[1]
    mask = np.arange(width)[None, :] < block.trajectory_rows[:, None]
    mask &= np.isclose(block.traj_day, day)
    if keep is not None:
        mask &= keep(block.traj_genotype, block.traj_phenotype)
    return np.where(mask, block.traj_cells, 0).sum(axis=1)


def reference_cells(results: list[ReferenceResult], index: int,
                    keep: Callable[[int, int], bool] | None = None) -> np.ndarray:
    """Per-replicate cells in snapshot ``index`` of reference results (rows chosen by ``keep``)."""
    return np.array([
        sum(n for (g, p), n in r.snapshots[index].items() if keep is None or keep(g, p))
        for r in results
    ], dtype=np.int64)


def mean_se(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def integer_bins(expected: np.ndarray, minimum: float = MIN_EXPECTED) -> list[int]:
    """Left edges of bins over 0, 1, 2, ... each holding an expected count >= ``minimum``.

    ``expected[k]`` is the expected count of value k; the last bin is open (all values >= its
    left edge) and is merged into the previous one if it falls short.
    """
    edges = [0]
    running = 0.0
    for k, e in enumerate(expected):
        running += e
        if running >= minimum and k + 1 < len(expected):
            edges.append(k + 1)
            running = 0.0
    tail = expected[edges[-1]:].sum()
    if tail < minimum and len(edges) > 1:
        edges.pop()
    return edges


def binned(values: np.ndarray, edges: list[int]) -> np.ndarray:
    """Counts of integer ``values`` in the bins starting at ``edges`` (last bin open)."""
    index = np.searchsorted(np.asarray(edges), values, side="right") - 1
    return np.bincount(index, minlength=len(edges)).astype(np.float64)


def chi_square_goodness_of_fit(values: np.ndarray, pmf: np.ndarray) -> tuple[float, int, float]:
    """Chi-square test of integer samples against a law with probabilities ``pmf`` on 0..len-1
    (the mass beyond is put in the last bin). Returns (statistic, degrees of freedom, p)."""
    count = len(values)
    pmf = np.asarray(pmf, dtype=np.float64).copy()
    pmf[-1] += max(0.0, 1.0 - pmf.sum())
    edges = integer_bins(pmf * count)
    observed = binned(values, edges)
    expected = np.add.reduceat(pmf, edges) * count
    expected *= observed.sum() / expected.sum()
    result = stats.chisquare(observed, expected)
    return float(result.statistic), len(edges) - 1, float(result.pvalue)


def chi_square_two_sample(a: np.ndarray, b: np.ndarray, bins: int = 20) -> tuple[float, int, float]:
    """Two-sample chi-square on quantile bins of the pooled sample (safe for discrete data)."""
    pooled = np.concatenate([a, b])
    edges = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 3:
        edges = np.append(np.unique(pooled), pooled.max() + 1)
    table = np.vstack([np.histogram(a, bins=edges)[0], np.histogram(b, bins=edges)[0]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 0, 1.0
    result = stats.chi2_contingency(table)
    return float(result.statistic), int(result.dof), float(result.pvalue)


def two_sample_numbers(engine: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Chi-square, KS and mean-difference summaries of two samples."""
    chi2, dof, p_chi2 = chi_square_two_sample(engine, exact)
    ks = stats.ks_2samp(engine, exact, method="asymp")
    m1, s1 = mean_se(engine)
    m2, s2 = mean_se(exact)
    se = math.hypot(s1, s2)
    return {"chi2": chi2, "dof": dof, "p_chi2": p_chi2, "ks": float(ks.statistic),
            "p_ks": float(ks.pvalue), "mean_engine": m1, "mean_exact": m2,
            "diff": m1 - m2, "diff_se": se, "z": (m1 - m2) / se if se > 0 else 0.0}


def fmt_p(p: float) -> str:
    if p < 1e-300:
        return "< 1e-300"
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def signed(x: float, decimals: int = 1) -> str:
    """x with an explicit sign, and no "-0.0"."""
    text = f"{x:+.{decimals}f}"
    return text if float(text) != 0.0 else f"{0.0:.{decimals}f}"


def fmt_pm(value: float, se: float) -> str:
    """value ± SE with the SE to two significant digits (at least two decimals)."""
    if not math.isfinite(se) or se <= 0:
        return f"{value:.2f}"
    decimals = max(2, 1 - math.floor(math.log10(se)))
    return f"{value:.{decimals}f} ± {se:.{decimals}f}"


def ccdf(values: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Empirical P(X >= m) for every m in ``support``."""
    ordered = np.sort(values)
    return 1.0 - np.searchsorted(ordered, support, side="left") / len(ordered)


def setup_matplotlib() -> None:
    plt.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 300,
        "font.size": 8,
        "axes.titlesize": 8.5,
        "axes.labelsize": 8,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.linewidth": 0.7,
        "xtick.major.width": 0.7,
        "ytick.major.width": 0.7,
        "lines.linewidth": 1.2,
        "lines.markersize": 4,
        "font.family": "DejaVu Sans",
        "mathtext.default": "regular",
    })


def panel_label(ax: plt.Axes, label: str, dx_points: float = -30.0) -> None:
    """A bold panel letter just above the axes' top-left corner, left of the tick labels."""
    ax.annotate(label, xy=(0.0, 1.0), xycoords="axes fraction", xytext=(dx_points, 6.0),
                textcoords="offset points", fontsize=10, fontweight="bold", ha="left",
                va="bottom")


def style_ccdf_panel(ax, letter: str, title: str, count: int, parameters: str) -> None:
    """Log-log axes, labels, a parameter box and the legend of one P(M >= m) panel."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(0.5 / count, 1.0)
    ax.set_xlabel("pre-existing mutant cells m")
    ax.set_ylabel("P(M ≥ m)")
    ax.set_title(title)
    ax.text(0.97, 0.97, parameters, ha="right", va="top", transform=ax.transAxes, fontsize=7)
    ax.legend(loc="lower left")
    panel_label(ax, letter)


def save(fig: plt.Figure, path: Path) -> None:
    """Write a 300-dpi PNG, reduced to a 256-colour palette (visually lossless for line art,
    about a third of the size); no metadata, so reruns with the same seed give the same bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.03, facecolor="white")
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
        palette.save(path, optimize=True, dpi=(300, 300))


# ============================================================================ 1. one-cell law


def kendall_pmf(b: float, d: float, t: float, size: int) -> np.ndarray:
    """P(N(t) = n), n = 0..size-1, from one cell: alpha at 0, (1-alpha)(1-beta) beta^(n-1) after.

    With E = exp((b-d) t): alpha = d (E-1)/(b E - d), beta = b (E-1)/(b E - d) (Kendall 1948);
    written out here independently of the engine's birth_death module.
    """
    e = math.exp((b - d) * t)
    alpha = d * (e - 1.0) / (b * e - d)
    beta = b * (e - 1.0) / (b * e - d)
    n = np.arange(size)
    pmf = (1.0 - alpha) * (1.0 - beta) * beta ** np.maximum(n - 1, 0)
    pmf[0] = alpha
    return pmf


def section_one_cell_law(settings: Settings, seed: int, out: Path) -> Section:
    b, d, t, dt = 1.0, 0.5, 3.0, 0.5
    count = settings.one_cell
    block = run_engine(one_type_model(b, d, t, dt, initial_cells=1), seed, count)
    final = block.final_cells
    assert np.all(block.status != kernel.STATUS_DIED)
    p0, mean, var = one_cell_law(b, d, t)
    size = int(final.max()) + 200
    pmf = kendall_pmf(b, d, t, size)
    assert abs(pmf[0] - p0) < 1e-12 and abs((np.arange(size) * pmf).sum() - mean) < 1e-9

    chi2, dof, p_chi2 = chi_square_goodness_of_fit(final, pmf)
    frequency = np.bincount(final, minlength=size)[:size] / count
    extinct = float((final == 0).mean())
    z_p0 = (extinct - p0) / math.sqrt(p0 * (1 - p0) / count)
    m, se = mean_se(final)
    z_mean = (m - mean) / math.sqrt(var / count)
    centred = final - final.mean()
    sample_var = float(final.var(ddof=1))
    z_var = (sample_var - var) / math.sqrt((np.mean(centred**4) - var**2) / count)
    survivors = final[final > 0]
    geometric_mean = 1.0 / (1.0 - (pmf[2] / pmf[1]))

    # Figure: the law on a log axis, then standardised residuals per value.
    shown = int(np.max(np.flatnonzero(pmf * count >= 1.0))) + 1
    n = np.arange(shown)
    se_freq = np.sqrt(pmf[:shown] * (1 - pmf[:shown]) / count)
    residual = (frequency[:shown] - pmf[:shown]) / se_freq
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(4.6, 4.0), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.08})
    nonzero = frequency[:shown] > 0
    ax.bar(n[nonzero], frequency[:shown][nonzero], width=0.85, color=SKY_BLUE,
           edgecolor="none", label=f"engine, dt = {dt:g} day ({count:,} replicates)")
    ax.plot(n, pmf[:shown], "o", color=EXACT_COLOUR, markersize=2.6,
            label="exact (Kendall 1948)")
    ax.set_yscale("log")
    ax.set_ylabel("probability P(N(t) = n)")
    ax.set_ylim(0.3 / count, 1.0)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="upper right")
    ax.set_title(f"Cells at t = {t:g} days from one cell (b = {b:g}, d = {d:g} per day)")
    axr.axhspan(-2, 2, color=GREY, alpha=0.18, linewidth=0, label="±2 SE")
    axr.axhline(0.0, color=GREY, linewidth=0.7)
    axr.plot(n, residual, "o", color=ENGINE_COLOUR, markersize=2.2)
    limit = max(4.0, float(np.ceil(np.max(np.abs(residual)))) + 0.5)
    axr.set_ylim(-limit, limit)
    axr.set_yticks(np.arange(-2 * int(limit // 2), int(limit) + 1, 2))
    axr.set_ylabel("residual (SE)")
    fig.align_ylabels([ax, axr])
    axr.set_xlabel("cells n at t = 3 days")
    axr.set_xlim(-1.0, shown)
    axr.legend(loc="upper right", handlelength=1.0)
    save(fig, out / "one_cell_law.png")

    section = Section(
        "one_cell_law.png", "1. One-cell law (Kendall)",
        f"N(t) from one cell (b = {b:g}, d = {d:g} per day) after {int(t / dt)} steps of "
        f"dt = {dt:g} day, {count:,} replicates, against the exact law: P(0) = alpha, and given "
        "survival geometric with parameter 1 - beta. Bottom panel: (engine - exact) per value "
        "in binomial standard errors.",
    )
    section.rows = [
        ("chi-square goodness of fit (binned, expected >= 5)",
         f"{chi2:.1f} on {dof} df, p = {fmt_p(p_chi2)}"),
        ("P(extinct by t): engine vs exact", f"{extinct:.5f} vs {p0:.5f} (z = {z_p0:+.2f})"),
        ("E[N(t)]: engine vs exact", f"{m:.4f} ± {se:.4f} vs {mean:.4f} (z = {z_mean:+.2f})"),
        ("Var[N(t)]: engine vs exact", f"{sample_var:.2f} vs {var:.2f} (z = {z_var:+.2f})"),
        ("E[N(t) | survival]: engine vs exact",
         f"{survivors.mean():.4f} vs {geometric_mean:.4f}"),
        (f"largest |residual| over n = 0..{shown - 1}", f"{np.max(np.abs(residual)):.2f} SE"),
    ]
    section.check("one-cell law: chi-square", p=p_chi2)
    section.check("one-cell law: P(extinct by t)", z=z_p0)
    section.check("one-cell law: E[N(t)]", z=z_mean)
    section.check("one-cell law: Var[N(t)]", z=z_var)
    return section


# ============================================================================ 2. Luria-Delbruck


def yule_mutant_laws(sizes: np.ndarray, u: float) -> dict[int, np.ndarray]:
    """Exact law of mutant cells M_N in a pure-birth population grown from one cell, at each size N.

    Jump chain: from size k with M mutants the next division makes a mutant cell with
    probability M/k + u (k - M)/k (a mutant divides, or a non-mutant division mutates);
    the distribution of M is carried forward for k = 1 .. max(sizes) - 1.
    Returns {N: P(M_N = m), m = 0..N-1}.
    """
    wanted = set(int(n) for n in sizes)
    laws: dict[int, np.ndarray] = {}
    law = np.array([1.0])
    if 1 in wanted:
        laws[1] = law.copy()
    for k in range(1, int(max(wanted))):
        m = np.arange(k)
        up = m / k + u * (k - m) / k
        new = np.zeros(k + 1)
        new[:k] += law * (1.0 - up)
        new[1:] += law * up
        law = new
        if k + 1 in wanted:
            laws[k + 1] = law.copy()
    return laws


def pregrowth_model(b: float, d: float, u: float, target: int, dt: float) -> CompiledModel:
    return compiled({
        "time": {"horizon_days": dt, "dt_days": dt, "record_every_days": dt},
        "tumor": {"grow_from_single_cell_to": target},
        "phenotypes": {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}},
        "alterations": {"R": {"mutation_rate_per_division": u}},
    })


def section_luria_delbruck(settings: Settings, seed: int, out: Path) -> Section:
    count = settings.luria_delbruck
    dt = 0.25

    # (a) Pure birth to N = 1000 against the exact Yule law, mixed over the realised sizes
    # (the engine lands on the target at a step end, so a replicate may hold slightly more).
    b, u, target = 1.0, 1e-3, 1000
    block = run_engine(pregrowth_model(b, 0.0, u, target, dt), seed, count)
    sizes = engine_cells(block, 0.0)
    mutants = block.mechanism_cells_at_start[:, 0]
    laws = yule_mutant_laws(sizes, u)
    width = int(sizes.max())
    mixture = np.zeros(width)
    unique, multiplicity = np.unique(sizes, return_counts=True)
    for n, k in zip(unique, multiplicity, strict=True):
        mixture[: len(laws[int(n)])] += k * laws[int(n)]
    mixture /= count
    exact_n = laws.get(target) if target in laws else yule_mutant_laws(np.array([target]), u)[target]
    chi2, dof, p_chi2 = chi_square_goodness_of_fit(mutants, mixture)
    moments = np.array([pure_birth_mutant_moments(int(n), u) for n in unique])
    exact_mean = float((moments[:, 1] * multiplicity).sum() / count)
    exact_var_of_sum = float((moments[:, 2] * multiplicity).sum())
    mean_a, _ = mean_se(mutants)
    z_mean = (mutants.sum() - exact_mean * count) / math.sqrt(exact_var_of_sum)
    recursion_mean = float((np.arange(width) * mixture).sum())
    assert abs(recursion_mean - exact_mean) < 1e-6 * max(1.0, exact_mean)
    p_none = float((mutants == 0).mean())
    exact_none = float(mixture[0])
    z_none = (p_none - exact_none) / math.sqrt(exact_none * (1 - exact_none) / count)

    # (b) With death to N = 300 against the exact reference engine.
    bd, dd, ud, target_d = 1.0, 0.3, 3e-3, 300
    model_d = pregrowth_model(bd, dd, ud, target_d, dt)
    block_d = run_engine(model_d, seed + 1, count)
    reference = simulate_reference_many(model_d, seed + 2, count, record_days=[0.0])
    engine_d = block_d.mechanism_cells_at_start[:, 0]
    exact_d = np.array([r.cells_at_start[0] for r in reference], dtype=np.int64)
    two = two_sample_numbers(engine_d, exact_d)
    present = (engine_d > 0).mean(), (exact_d > 0).mean()
    pooled = (present[0] + present[1]) / 2
    z_present = (present[0] - present[1]) / math.sqrt(pooled * (1 - pooled) * 2 / count)
    days_engine = block_d.days_to_diagnosis
    days_exact = np.array([r.days_to_diagnosis for r in reference])
    ks_days = stats.ks_2samp(days_engine, days_exact, method="asymp")
    sizes_d = engine_cells(block_d, 0.0)
    # The engine's pre-growth stops at the first step end at or above the target, the reference
    # exactly at it: the Luria-Delbruck approximation at each replicate's size predicts the shift.
    size_values, size_counts = np.unique(sizes_d, return_counts=True)
    predicted = np.array([expected_preexisting_mutants(bd, dd, ud, float(n))[1] for n in size_values])
    predicted_shift = float((predicted * size_counts).sum() / count
                            - expected_preexisting_mutants(bd, dd, ud, float(target_d))[1])

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.0, 3.0), gridspec_kw={"wspace": 0.3})
    m_a = np.arange(1, max(int(mutants.max()), 1) + 1)
    exact_ccdf = 1.0 - np.cumsum(mixture)[m_a - 1]
    exact_ccdf_n = 1.0 - np.cumsum(exact_n)[np.minimum(m_a, len(exact_n)) - 1]
    ax1.step(m_a, ccdf(mutants, m_a), where="post", color=ENGINE_COLOUR, linewidth=1.3,
             label=f"engine, dt = {dt:g} day")
    ax1.step(m_a, exact_ccdf, "--", where="post", color=EXACT_COLOUR, linewidth=1.3,
             label="exact jump-chain law\n(at each replicate's size)")
    ax1.step(m_a, exact_ccdf_n, ":", where="post", color=BLACK, linewidth=1.1,
             label=f"exact law at N = {target}")
    style_ccdf_panel(ax1, "a", f"Pure birth to N = {target:,} cells", count,
                     f"b = {b:g} per day, d = 0\nu = {u:g} per division\n{count:,} replicates")

    m_b = np.arange(1, max(int(engine_d.max()), int(exact_d.max()), 1) + 1)
    ax2.step(m_b, ccdf(engine_d, m_b), where="post", color=ENGINE_COLOUR, linewidth=1.3,
             label=f"engine, dt = {dt:g} day")
    ax2.step(m_b, ccdf(exact_d, m_b), where="post", color=EXACT_COLOUR, linestyle="--",
             linewidth=1.3, label="exact reference engine\n(Gillespie)")
    style_ccdf_panel(ax2, "b", f"With death to N = {target_d} cells", count,
                     f"b = {bd:g}, d = {dd:g} per day\nu = {ud:g} per division\n"
                     f"{count:,} replicates each")
    save(fig, out / "luria_delbruck.png")

    section = Section(
        "luria_delbruck.png", "2. Pre-existing mutants (Luria-Delbrück)",
        f"Tumours grown from one cell, {count:,} replicates each, dt = {dt:g} day. (a) Pure birth "
        f"to N = {target}: the engine against the exact law of the Yule jump chain (from size k "
        "with M mutants the next cell is a mutant with probability M/k + u(k-M)/k). Pre-growth "
        "stops at the first step end at or above the target (the final steps shrink "
        "geometrically, so it overshoots by a few cells), so each replicate is compared with "
        "the exact law at its own size (the mixture drawn dashed; the law at exactly N = "
        f"{target} dotted). (b) With death to N = {target_d}: the engine against the exact "
        "Gillespie reference engine (which stops exactly at the target).",
    )
    q = np.percentile(sizes, [50, 99])
    qd = np.percentile(sizes_d, [50, 99])
    section.rows = [
        ("(a) chi-square vs exact law (binned, expected >= 5)",
         f"{chi2:.1f} on {dof} df, p = {fmt_p(p_chi2)}"),
        ("(a) P(M = 0): engine vs exact", f"{p_none:.4f} vs {exact_none:.4f} (z = {z_none:+.2f}); "
         f"(1-u)^(N-1) at N = {target}: {(1 - u) ** (target - 1):.4f}"),
        ("(a) E[M]: engine vs exact", f"{mean_a:.3f} vs {exact_mean:.3f} (z = {z_mean:+.2f})"),
        ("(a) realised size at day 0: median, 99th percentile, max",
         f"{q[0]:.0f}, {q[1]:.0f}, {sizes.max()} cells"),
        ("(b) chi-square engine vs reference (20 pooled-quantile bins)",
         f"{two['chi2']:.1f} on {two['dof']} df, p = {fmt_p(two['p_chi2'])}"),
        ("(b) KS engine vs reference (conservative for discrete data)",
         f"D = {two['ks']:.4f}, p = {fmt_p(two['p_ks'])}"),
        ("(b) P(M > 0): engine vs reference",
         f"{present[0]:.4f} vs {present[1]:.4f}, difference {present[0] - present[1]:+.4f} "
         f"(z = {z_present:+.2f}); predicted from the engine's size overshoot: {predicted_shift:+.4f}"),
        ("(b) E[M]: engine vs reference",
         f"{two['mean_engine']:.3f} vs {two['mean_exact']:.3f}, difference "
         f"{two['diff']:+.3f} ± {two['diff_se']:.3f} (z = {two['z']:+.2f})"),
        ("(b) days to diagnosis: KS engine vs reference",
         f"D = {ks_days.statistic:.4f}, p = {fmt_p(float(ks_days.pvalue))}; means "
         f"{np.mean(days_engine):.3f} vs {np.mean(days_exact):.3f} days"),
        ("(b) realised size at day 0 (engine): median, 99th percentile",
         f"{qd[0]:.0f}, {qd[1]:.0f} cells, mean {sizes_d.mean():.1f} (reference: exactly {target_d})"),
    ]
    section.check("Luria-Delbruck (a): chi-square vs exact law", p=p_chi2)
    section.check("Luria-Delbruck (a): P(M = 0)", z=z_none)
    section.check("Luria-Delbruck (a): E[M]", z=z_mean)
    section.check("Luria-Delbruck (b): chi-square vs reference", p=two["p_chi2"])
    section.check("Luria-Delbruck (b): KS vs reference", p=two["p_ks"])
    section.check("Luria-Delbruck (b): P(M > 0)", z=z_present)
    section.check("Luria-Delbruck (b): E[M]", z=two["z"])
    section.check("Luria-Delbruck (b): days to diagnosis (KS)", p=float(ks_days.pvalue))
    return section


# ============================================================================ 3. dt convergence


DT_VALUES = (2.0, 1.0, 0.5, 0.25, 0.1, 0.05)


def fitted_slope(dts: np.ndarray, bias: np.ndarray, se: np.ndarray, resolved: np.ndarray
                 ) -> tuple[float, float, int]:
    """Weighted least-squares slope of log|bias| on log dt over the resolved points.

    Weights from the delta method, SE(log|bias|) = SE / |bias|. Returns (slope, its SE, points).
    """
    x = np.log(dts[resolved])
    y = np.log(np.abs(bias[resolved]))
    w = (np.abs(bias[resolved]) / se[resolved]) ** 2
    if len(x) < 2:
        return math.nan, math.nan, int(len(x))
    design = np.vstack([np.ones_like(x), x]).T
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    coef = cov @ design.T @ (w * y)
    scale = 1.0
    if len(x) > 2:  # inflate by the residual scatter when it exceeds the sampling noise
        residual = y - design @ coef
        scale = max(1.0, float((w * residual**2).sum() / (len(x) - 2)))
    return float(coef[1]), float(math.sqrt(cov[1, 1] * scale)), int(len(x))


def section_dt_convergence(settings: Settings, seed: int, out: Path) -> Section:
    count = settings.dt_convergence
    n0, t = 100_000, 8.0

    # Growth + switching (test_switching_split_is_second_order_in_dt): E[n(t)] = n0 expm(A t).
    b0, d0, b1, d1, s01, s10 = 0.6, 0.2, 0.05, 0.0, 0.05, 0.2
    generator = np.array([[b0 - d0 - s01, s01], [s10, b1 - d1 - s10]])
    exact_switch = float((np.array([n0, 0.0]) @ expm(generator * t))[1])
    # Growth + mutation (test_mean_mutants_at_fixed_time_converge_in_dt): n0 e^{rt}(1 - e^{-but}).
    b, d, u = 0.6, 0.2, 2e-3
    exact_mutants = n0 * math.exp((b - d) * t) * -math.expm1(-b * u * t)

    cases = {
        "switching": {"exact": exact_switch, "bias": [], "se": []},
        "mutation": {"exact": exact_mutants, "bias": [], "se": []},
    }
    for i, dt in enumerate(DT_VALUES):
        time_section = {"horizon_days": t, "dt_days": dt, "record_every_days": t}
        switching = compiled({
            "time": time_section,
            "tumor": {"initial_cells": n0},
            "phenotypes": {"s": {"birth_rate_per_day": b0, "death_rate_per_day": d0},
                           "p": {"birth_rate_per_day": b1, "death_rate_per_day": d1}},
            "switching": [{"from": "s", "to": "p", "rate_per_day": s01},
                          {"from": "p", "to": "s", "rate_per_day": s10}],
        })
        mutation = compiled({
            "time": time_section,
            "tumor": {"initial_cells": n0},
            "phenotypes": {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}},
            "alterations": {"A": {"mutation_rate_per_division": u}},
        })
        block = run_engine(switching, seed + 2 * i, count)
        m, se = mean_se(engine_cells(block, t, lambda g, p: p == 1))
        cases["switching"]["bias"].append(m - exact_switch)
        cases["switching"]["se"].append(se)
        block = run_engine(mutation, seed + 2 * i + 1, count)
        m, se = mean_se(engine_cells(block, t, lambda g, p: g != 0))
        cases["mutation"]["bias"].append(m - exact_mutants)
        cases["mutation"]["se"].append(se)
        del block

    dts = np.array(DT_VALUES)
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0), gridspec_kw={"wspace": 0.28})
    titles = {
        "switching": (f"Persister cells, growth + switching\n(E = {exact_switch:,.0f} cells at "
                      f"t = {t:g} days)"),
        "mutation": (f"Mutant cells, growth + mutation\n(E = {exact_mutants:,.0f} cells at "
                     f"t = {t:g} days)"),
    }
    colours = {"switching": GREEN, "mutation": ENGINE_COLOUR}
    slopes = {}
    for ax, label, (name, case) in zip(axes, "ab", cases.items(), strict=True):
        bias = np.array(case["bias"])
        se = np.array(case["se"])
        magnitude = np.abs(bias)
        resolved = magnitude > 3.0 * se
        slope, slope_se, points = fitted_slope(dts, bias, se, resolved)
        slopes[name] = (slope, slope_se, points)
        positive = magnitude[magnitude > 0]
        bottom = 0.5 * min(float(np.min(se)), float(positive.min()) if positive.size else 1.0)
        # Intervals that reach zero have their lower whisker run to the bottom of the axes.
        lower = np.where(magnitude - 2 * se > bottom, magnitude - 2 * se, bottom)
        upper = magnitude + 2 * se
        colour = colours[name]
        reaches_zero = magnitude - 2 * se <= bottom
        for chosen, cap in ((~reaches_zero, 2.0), (reaches_zero, 0.0)):
            if chosen.any():
                ax.errorbar(dts[chosen], magnitude[chosen],
                            yerr=[(magnitude - lower)[chosen], (upper - magnitude)[chosen]],
                            fmt="none", ecolor=colour, elinewidth=0.9, capsize=cap)
        ax.plot(dts[resolved], magnitude[resolved], "o", color=colour, markersize=4.5)
        ax.plot(dts[~resolved], magnitude[~resolved], "o", markerfacecolor="white",
                markeredgecolor=colour, markersize=4.5)
        ax.axhline(2 * float(np.median(se)), color=GREY, linewidth=0.7, linestyle="-.")
        anchor = int(np.argmax(dts))
        grid = np.geomspace(dts.min(), dts.max(), 50)
        for power, style in ((1, "--"), (2, ":")):
            ax.plot(grid, magnitude[anchor] * (grid / dts[anchor]) ** power, style, color=BLACK,
                    linewidth=0.9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("time step dt (days)")
        ax.set_ylabel("|engine mean − exact mean| (cells)")
        ax.set_xticks(dts, [f"{x:g}" for x in dts])
        ax.minorticks_off()
        ax.set_ylim(bottom, magnitude.max() * 4)
        ax.set_title(titles[name])
        panel_label(ax, label)
        fit_text = (f"fitted slope {fmt_pm(slope, slope_se)}\n({points} points with "
                    "|bias| > 3 SE)") if points >= 2 else "fewer than 2 resolved points"
        ax.text(0.03, 0.97, fit_text, transform=ax.transAxes, va="top", ha="left", fontsize=7)
    handles = [
        Line2D([], [], marker="o", color=GREY, linestyle="none", label="|bias| > 3 SE"),
        Line2D([], [], marker="o", markerfacecolor="white", markeredgecolor=GREY,
               linestyle="none", label="|bias| ≤ 3 SE"),
        Line2D([], [], color=GREY, marker="|", linestyle="none", markersize=8, label="±2 SE"),
        Line2D([], [], color=GREY, linestyle="-.", linewidth=0.7, label="2 SE (noise level)"),
        Line2D([], [], color=BLACK, linestyle="--", linewidth=0.9, label="slope 1"),
        Line2D([], [], color=BLACK, linestyle=":", linewidth=0.9, label="slope 2"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=6, bbox_to_anchor=(0.5, 0.0),
               handlelength=1.8, columnspacing=1.4)
    save(fig, out / "dt_convergence.png")

    section = Section(
        "dt_convergence.png", "3. Splitting error against dt",
        f"Bias of the engine's mean at t = {t:g} days from n0 = {n0:,} cells, {count:,} replicates "
        "per dt. (a) Persister cells under growth and switching (s: b = 0.6, d = 0.2; p: b = 0.05, "
        "d = 0; s→p 0.05, p→s 0.2 per day), exact n0·expm(A t). (b) Mutant cells under growth and "
        "mutation (b = 0.6, d = 0.2 per day, u = 2e-3), exact n0 e^{rt}(1 − e^{−but}). Slopes are "
        "weighted least-squares fits of log|bias| on log dt over the points resolved at 3 SE.",
    )
    for name, case in cases.items():
        what = "persister" if name == "switching" else "mutant"
        slope, slope_se, points = slopes[name]
        section.rows.append((f"({'a' if name == 'switching' else 'b'}) exact E[{what} cells]",
                             f"{case['exact']:,.1f}"))
        for dt, bias, se in zip(DT_VALUES, case["bias"], case["se"], strict=True):
            section.rows.append((f"({'a' if name == 'switching' else 'b'}) bias at dt = {dt:g} day",
                                 f"{bias:+.1f} ± {se:.1f} cells ({bias / se:+.1f} SE; "
                                 f"{bias / case['exact']:+.2e} relative)"))
        section.rows.append((f"({'a' if name == 'switching' else 'b'}) fitted log-log slope "
                             f"({points} points)", fmt_pm(slope, slope_se)))
        smallest = int(np.argmin(DT_VALUES))
        section.check(f"dt convergence: {what} bias at dt = {DT_VALUES[smallest]:g} day",
                      z=case["bias"][smallest] / case["se"][smallest])
    return section


# ============================================================================ 4. engine vs reference


#: (name, selector of engine trajectory rows, selector of reference compartments, panel title).
QUANTITIES: tuple[tuple[str, Callable, Callable, str], ...] = (
    ("total cells", lambda g, p: np.ones_like(g, dtype=bool), lambda g, p: True, "Total cells"),
    ("persister cells", lambda g, p: p == 1, lambda g, p: p == 1, "Persister cells"),
    ("mutant cells (A or B)", lambda g, p: g != 0, lambda g, p: g != 0,
     "Mutant cells (A or B)"),
)


def qq_levels(count: int) -> np.ndarray:
    """Probability levels for QQ plots: the body on a uniform grid, the tails refined."""
    body = np.linspace(0.005, 0.995, 199)
    tail = [q for q in (0.001, 0.999, 0.9999) if min(q, 1 - q) * count >= 10]
    return np.sort(np.concatenate([body, tail]))


def section_engine_vs_reference(settings: Settings, seed: int, out: Path) -> Section:
    count = settings.engine_vs_reference
    day = 6.0
    base = compiled(MIXED_SMALL_TUMOUR)
    started = time.perf_counter()
    reference = simulate_reference_many(base, seed, count, record_days=[day])
    reference_seconds = time.perf_counter() - started
    exact = {name: reference_cells(reference, 0, keep) for name, _, keep, _ in QUANTITIES}
    del reference

    dts = (1.0, 0.25)
    engine: dict[float, dict[str, np.ndarray]] = {}
    for i, dt in enumerate(dts):
        data = {**MIXED_SMALL_TUMOUR, "time": {**MIXED_SMALL_TUMOUR["time"], "dt_days": dt}}
        block = run_engine(compiled(data), seed + 1 + i, count)
        engine[dt] = {name: engine_cells(block, day, keep) for name, keep, _, _ in QUANTITIES}
        del block

    levels = qq_levels(count)
    fig, axes = plt.subplots(2, 3, figsize=(7.0, 4.9),
                             gridspec_kw={"wspace": 0.38, "hspace": 0.55})
    colours = {1.0: VERMILLION, 0.25: ENGINE_COLOUR}
    numbers: dict[tuple[float, str], dict[str, float]] = {}
    for row, dt in enumerate(dts):
        for col, (name, _, _, title) in enumerate(QUANTITIES):
            ax = axes[row, col]
            x = np.quantile(exact[name], levels)
            y = np.quantile(engine[dt][name], levels)
            result = two_sample_numbers(engine[dt][name], exact[name])
            numbers[(dt, name)] = result
            low = min(x.min(), y.min())
            high = max(x.max(), y.max())
            pad = 0.04 * (high - low if high > low else 1.0)
            line = [low - pad, high + pad]
            ax.plot(line, line, color=GREY, linewidth=0.8, zorder=1)
            ax.plot(x, y, "o", color=colours[dt], markersize=2.4, markeredgewidth=0, zorder=2)
            ax.set_xlim(line)
            ax.set_ylim(line)
            ax.set_aspect("equal", adjustable="box")
            ax.set_xlabel("reference quantile (cells)")
            ax.set_ylabel("engine quantile (cells)")
            if col == 0:
                ax.annotate(f"dt = {dt:g} day", xy=(0.0, 0.5), xycoords="axes fraction",
                            xytext=(-50, 0), textcoords="offset points", rotation=90,
                            ha="center", va="center", fontsize=8.5, fontweight="bold")
            ax.set_title(f"{title}, day {day:g}")
            # Below the diagonal, bottom right: the part of a QQ plot that stays empty.
            ax.text(0.97, 0.04,
                    f"χ² p = {fmt_p(result['p_chi2'])}\nKS p = {fmt_p(result['p_ks'])}\n"
                    f"Δmean = {result['diff']:+.2f} cells\n"
                    f"({signed(100 * result['diff'] / result['mean_exact'])} %, "
                    f"{signed(result['z'])} SE)",
                    transform=ax.transAxes, va="bottom", ha="right", fontsize=6.5)
            ax.locator_params(axis="both", nbins=4)
            if row == 0 and col == 0:
                panel_label(ax, "a")
            if row == 1 and col == 0:
                panel_label(ax, "b")
    handles = [Line2D([], [], marker="o", color=colours[dt], linestyle="none", markersize=4,
                      label=f"engine, dt = {dt:g} day") for dt in dts]
    handles.append(Line2D([], [], color=GREY, linewidth=0.8, label="y = x"))
    fig.legend(handles=handles, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.995))
    save(fig, out / "engine_vs_reference.png")

    section = Section(
        "engine_vs_reference.png", "4. Engine against the exact reference engine (QQ)",
        f"The mixed case of `tests/test_engine_vs_reference.py` (40 cells, a quarter persisters; "
        "growth, death, two alterations, 5x mutability in persisters, switching both ways) at day "
        f"{day:g}: {count:,} engine replicates per dt against {count:,} exact Gillespie replicates "
        f"({reference_seconds:.0f} s). Quantiles at {len(levels)} levels from "
        f"{levels[0]:g} to {levels[-1]:g}. Two-sample chi-square on 20 pooled-quantile bins, "
        "KS (conservative for discrete counts) and the difference of means in SE.",
    )
    for dt in dts:
        for name, _, _, _ in QUANTITIES:
            r = numbers[(dt, name)]
            section.rows.append((
                f"dt = {dt:g}: {name}",
                f"χ² p = {fmt_p(r['p_chi2'])}, KS p = {fmt_p(r['p_ks'])}; mean "
                f"{r['mean_engine']:.3f} vs {r['mean_exact']:.3f} "
                f"({r['diff']:+.3f} ± {r['diff_se']:.3f}, {r['z']:+.1f} SE)",
            ))
        for name, _, _, _ in QUANTITIES:
            r = numbers[(dt, name)]
            section.check(f"engine vs reference, dt = {dt:g}: {name} (chi-square)", p=r["p_chi2"])
            section.check(f"engine vs reference, dt = {dt:g}: {name} (KS)", p=r["p_ks"])
            section.check(f"engine vs reference, dt = {dt:g}: mean {name}", z=r["z"])
    return section


# ============================================================================ report


def write_markdown(out: Path, sections: list[Section], mode: str, seed: int, seconds: float) -> None:
    checks = sum(len(section.flags) for section in sections)
    lines = [
        "# Verification report",
        "",
        "Generated by `scripts/verify.py` "
        f"({mode} mode, seed {seed}, {seconds / 60:.1f} min on {numba.get_num_threads()} threads; "
        f"clonesim {clonesim.__version__}, numpy {np.__version__}, numba {numba.__version__}, "
        f"Python {platform.python_version()}). It runs the clone engine at larger replicate "
        "counts than the statistical tests and compares it with exact laws and with the exact "
        "Gillespie reference engine. Rerun with `python scripts/verify.py` (full) or `--quick` "
        "(smoke run); the same seed gives the same numbers.",
        "",
        "How to read it: p-values are two-sided and not corrected for multiplicity (the report "
        "computes a few dozen, so one near 0.003 is not unusual for a correct engine); z is "
        "(engine − exact) / SE. At these replicate counts the tests' thresholds (p < 1e-4, "
        "|z| > 4) also detect the engine's known approximations, which must shrink with dt: "
        "the splitting error that figure 3 measures, and pre-growth stopping at the first step "
        "end at or above the target size (a few cells above it).",
        "",
        f"## Results beyond the tests' thresholds ({checks})",
        "",
    ]
    flagged = [flag for section in sections for flag in section.flags]
    lines += [f"* {flag}" for flag in flagged] or ["None."]
    lines.append("")
    for section in sections:
        lines += [f"## {section.title}", "", f"![{section.title}]({section.figure})", "",
                  section.text, "", "| quantity | value |", "| --- | --- |"]
        for key, value in section.rows:
            cells = (key.strip().replace("|", "\\|"), value.replace("|", "\\|"))
            lines.append(f"| {cells[0]} | {cells[1]} |")
        lines += ["", f"_Section run time: {section.seconds:.0f} s._", ""]
    (out / "README.md").write_text("\n".join(lines))


SECTIONS: dict[str, Callable[[Settings, int, Path], Section]] = {
    "one_cell_law": section_one_cell_law,
    "luria_delbruck": section_luria_delbruck,
    "dt_convergence": section_dt_convergence,
    "engine_vs_reference": section_engine_vs_reference,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output directory (default {DEFAULT_OUT.relative_to(ROOT)}/, "
                             f"or {QUICK_OUT.relative_to(ROOT)}/ with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run with ~20x fewer replicates")
    parser.add_argument("--seed", type=int, default=2024, help="base seed (default 2024)")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run only this figure (repeatable); the README lists only those")
    args = parser.parse_args(argv)

    settings = QUICK if args.quick else FULL
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    setup_matplotlib()
    started = time.perf_counter()
    runner.compile_kernels()
    print(f"kernels ready in {time.perf_counter() - started:.1f} s; "
          f"{'quick' if args.quick else 'full'} run into {out}", flush=True)
    sections = []
    for offset, (name, function) in enumerate(SECTIONS.items()):
        if args.only and name not in args.only:
            continue
        begun = time.perf_counter()
        section = function(settings, args.seed + 100 * offset, out)
        section.seconds = time.perf_counter() - begun
        sections.append(section)
        print(f"  {section.figure}: {section.seconds:.1f} s", flush=True)
        for key, value in section.rows:
            print(f"    {key}: {value}", flush=True)
    total = time.perf_counter() - started
    write_markdown(out, sections, "quick" if args.quick else "full", args.seed, total)
    print(f"wrote {out / 'README.md'} in {total:.1f} s")


if __name__ == "__main__":
    main()
