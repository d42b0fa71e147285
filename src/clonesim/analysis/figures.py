"""Report figures (matplotlib, no pyplot: figures render with Agg and SVG, never a display).

Colours are defined once here: schedules take the Okabe-Ito palette (colour-blind safe)
in their configured order - past eight, the colours repeat with dashed and then dotted
lines - and keep their colour in every figure; resistance mechanisms (alterations, then
non-founder phenotypes) take the same palette in their own order, and a genotype in a
Muller plot takes the colour of its alteration (a darker shade for combinations). The
founder genotype is light grey; non-founder phenotypes (persisters) are drawn in a
lighter shade of their genotype's colour with hatching.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MultipleLocator, NullFormatter

from clonesim.analysis.composition import FOUNDER, OTHER, genotype_parents, muller_bands
from clonesim.analysis.survival import DAYS_PER_MONTH, ENDPOINT_LABELS

#: Okabe & Ito (2008), "Color universal design": distinguishable under the common colour-vision
#: deficiencies. Yellow comes last among schedules (weak as a line on white).
OKABE_ITO = {
    "blue": "#0072B2", "orange": "#E69F00", "bluish_green": "#009E73", "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7", "sky_blue": "#56B4E9", "black": "#000000", "yellow": "#F0E442",
    "grey": "#999999",
}
#: Yellow is left out of the schedule lines (too faint on white) and the palette's grey put
#: in; a ninth schedule repeats the colours with dashed lines.
SCHEDULE_COLOURS = [OKABE_ITO[c] for c in ("blue", "orange", "bluish_green", "vermillion",
                                           "reddish_purple", "sky_blue", "black", "grey")]
SCHEDULE_LINESTYLES = ["-", "--", ":"]
#: Marker shapes, so that schedules that coincide in a scatter plot stay distinguishable.
SCHEDULE_MARKERS = ["o", "s", "D", "^", "v", "P", "X", "h", "<", ">", "p", "*"]
MECHANISM_COLOURS = [OKABE_ITO[c] for c in ("vermillion", "blue", "bluish_green", "reddish_purple",
                                            "orange", "sky_blue", "yellow")]
FOUNDER_COLOUR = "#BDBDBD"
OTHER_COLOUR = "#5A5A5A"
NOT_PROGRESSED_COLOUR = "#E0E0E0"
PHENOTYPE_HATCHES = ["////", "\\\\\\\\", "xxxx", "...."]
#: Darkening of combination genotypes (a descendant of a drawn genotype), by sibling rank.
COMBINATION_SHADES = [0.62, 0.42, 0.8, 0.3]
PNG_DPI = 200
#: Below this share of patients with tumour, a mean composition is drawn faded (an average of few).
FEW_ALIVE_SHARE = 0.05

STYLE = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": False, "legend.frameon": False, "hatch.linewidth": 0.6, "svg.fonttype": "none",
    "figure.facecolor": "white", "savefig.facecolor": "white",
}
Y_LABELS = {
    "ttp": "Progression-free (share of patients)",
    "first_progression": "Free of a first progression (share)",
    "death": "Below lethal burden (share of patients)",
}


@dataclass(frozen=True)
class Palette:
    """The colours and line styles of one report (schedules, mechanisms, genotypes)."""

    schedules: dict[str, tuple[str, str]]
    mechanisms: dict[str, str]
    phenotypes: tuple[str, ...]
    markers: dict[str, str]

    @classmethod
    def build(cls, schedules: Sequence[str], mechanisms: Sequence[str], phenotypes: Sequence[str]
              ) -> Palette:
        """Schedules and mechanisms in their configured order; ``phenotypes`` founder first."""
        styles = {s: (SCHEDULE_COLOURS[i % len(SCHEDULE_COLOURS)],
                      SCHEDULE_LINESTYLES[(i // len(SCHEDULE_COLOURS)) % len(SCHEDULE_LINESTYLES)])
                  for i, s in enumerate(schedules)}
        colours = {m: MECHANISM_COLOURS[i % len(MECHANISM_COLOURS)] for i, m in enumerate(mechanisms)}
        colours["none"] = OTHER_COLOUR
        markers = {s: SCHEDULE_MARKERS[i % len(SCHEDULE_MARKERS)] for i, s in enumerate(schedules)}
        return cls(styles, colours, tuple(phenotypes), markers)

    def colour(self, schedule: str) -> str:
        return self.schedules[schedule][0]

    def line(self, schedule: str) -> dict:
        colour, style = self.schedules[schedule]
        return {"color": colour, "linestyle": style}

    def genotype_colour(self, genotype: str, shown: Sequence[str]) -> str:
        """A single alteration's mechanism colour; a combination: a darker shade of its drawn
        parent's colour (so a nested clone reads as its parent's descendant)."""
        if genotype == FOUNDER:
            return FOUNDER_COLOUR
        if genotype == OTHER:
            return OTHER_COLOUR
        if genotype in self.mechanisms:
            return self.mechanisms[genotype]
        parents = genotype_parents(list(shown))
        parent = parents.get(genotype, FOUNDER)
        if parent == FOUNDER:
            first = genotype.split("+")[0]
            return self.mechanisms.get(first, OTHER_COLOUR)
        siblings = [g for g in shown if parents.get(g) == parent and g not in self.mechanisms]
        factor = COMBINATION_SHADES[siblings.index(genotype) % len(COMBINATION_SHADES)]
        return _shade(self.genotype_colour(parent, shown), factor)


def _shade(colour: str, factor: float) -> tuple[float, float, float]:
    """Darker (factor < 1) towards black, or lighter (factor > 1: mixed with white)."""
    rgb = np.array(to_rgb(colour))
    if factor <= 1:
        return tuple(rgb * factor)
    weight = min(factor - 1, 1.0)
    return tuple(rgb + (1 - rgb) * weight)


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def save(figure: Figure, directory: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` (PNG_DPI) and ``stem.svg``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.png", directory / f"{stem}.svg"]
    with mpl.rc_context(STYLE):
        figure.savefig(paths[0], dpi=PNG_DPI)
        figure.savefig(paths[1])
    return paths


def month_step(horizon_months: float) -> int:
    """A tick step in months giving at most about 10 ticks up to the horizon."""
    for step in (1, 2, 3, 6, 12, 24, 60):
        if horizon_months / step <= 10:
            return step
    return 120


def display_days(horizon_days: float, last_event_days: float) -> float:
    """Where time axes end: the horizon, or - when every patient has died or been cured
    before it, so nothing changes afterwards - the last such event rounded up to a tick."""
    if last_event_days >= horizon_days:
        return horizon_days
    months = max(last_event_days, 1.0) / DAYS_PER_MONTH
    step = month_step(months)
    return min(horizon_days, math.ceil(months / step + 1e-9) * step * DAYS_PER_MONTH)


def _month_axis(ax, until_days: float, label: bool = True) -> float:
    """Months from 0 to ``until_days`` with round ticks; returns the tick step (months)."""
    until_months = until_days / DAYS_PER_MONTH
    step = month_step(until_months)
    ax.set_xlim(0, until_months)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    if label:
        ax.set_xlabel("Months since the start of therapy")
    return step


def _fmt_months(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} mo"


def kaplan_meier_figure(curves: pl.DataFrame, summary: pl.DataFrame, outcomes: pl.DataFrame,
                        endpoint: str, until_days: float, palette: Palette, title: str) -> Figure:
    """Kaplan-Meier curves of one endpoint per schedule with 95 % bands, medians in the
    legend, and the number at risk below the axis at each tick (time axis to ``until_days``)."""
    schedules = [s for s in palette.schedules if s in set(curves["schedule"].cast(pl.String))]
    with mpl.rc_context(STYLE):
        figure = new_figure(6.4, 4.2 + 0.16 * len(schedules))
        ax, table = figure.subplots(2, 1, height_ratios=[4.2, 0.16 * len(schedules) + 0.35], sharex=True)
        for schedule in schedules:
            rows = curves.filter(pl.col("schedule") == schedule)
            months = rows["month"].to_numpy()
            colour = palette.colour(schedule)
            ax.fill_between(months, rows["survival_lower"].to_numpy(), rows["survival_upper"].to_numpy(),
                            step="post", color=colour, alpha=0.15, linewidth=0)
            median = summary.filter(pl.col("schedule") == schedule)["median_months"][0]
            ax.step(months, rows["survival"].to_numpy(), where="post", linewidth=1.4,
                    label=f"{schedule} (median {_fmt_months(median)})", **palette.line(schedule))
        ax.axhline(0.5, color="0.6", linewidth=0.6, linestyle=(0, (2, 2)), zorder=0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(Y_LABELS[endpoint])
        ax.set_title(title, loc="left")
        ax.legend(loc="best", handlelength=2.2)
        step = _month_axis(ax, until_days)
        ax.tick_params(labelbottom=True)
        ticks = np.arange(0, until_days / DAYS_PER_MONTH + 1e-9, step)
        for row, schedule in enumerate(schedules):
            days = outcomes.filter(pl.col("schedule") == schedule)["days"].to_numpy()
            for tick in ticks:
                table.text(tick, row, f"{int((days >= tick * DAYS_PER_MONTH - 1e-9).sum())}",
                           ha="center", va="center", fontsize=6.5, color=palette.colour(schedule))
        table.set_ylim(len(schedules) - 0.5, -0.5)
        table.set_yticks(range(len(schedules)), labels=schedules, fontsize=6.5)
        table.tick_params(axis="y", pad=16)
        for label, schedule in zip(table.get_yticklabels(), schedules, strict=True):
            label.set_color(palette.colour(schedule))
        table.tick_params(left=False, bottom=False, labelbottom=False)
        for spine in table.spines.values():
            spine.set_visible(False)
        table.set_title("Number at risk", loc="left", fontsize=7)
    return figure


def comparison_figure(comparisons: pl.DataFrame, paired: pl.DataFrame, reference: str,
                      palette: Palette, title: str) -> Figure:
    """Per endpoint (rows): hazard ratio vs the reference with 95 % CI and log-rank p; the
    paired mean difference in restricted time (95 % t CI; open diamond: median with its
    sign-test CI); the shares of patients whose event came later, at the same time, earlier."""
    endpoints = paired["endpoint"].unique(maintain_order=True).cast(pl.String).to_list()
    schedules = [s for s in palette.schedules if s != reference
                 and s in set(paired["schedule"].cast(pl.String))]
    positions = np.arange(len(schedules))
    with mpl.rc_context(STYLE):
        figure = new_figure(9.0, 0.6 + len(endpoints) * (0.5 + 0.3 * len(schedules)))
        axes = figure.subplots(len(endpoints), 3, squeeze=False, width_ratios=[1.1, 1.1, 0.9])
        for row, endpoint in enumerate(endpoints):
            hr_ax, diff_ax, share_ax = axes[row]
            cmp = comparisons.filter(pl.col("endpoint") == endpoint)
            pair = paired.filter(pl.col("endpoint") == endpoint)
            hr_values = [v for v in cmp["hazard_ratio_lower"].to_list() + cmp["hazard_ratio_upper"].to_list()
                         if v is not None and v > 0 and math.isfinite(v)]
            for y, schedule in enumerate(schedules):
                colour = palette.colour(schedule)
                c = cmp.filter(pl.col("schedule") == schedule).row(0, named=True)
                p_text = f"p {format_p(c['logrank_p'], with_sign=True)}"
                if c["hazard_ratio"] is None:
                    hr_ax.text(1.0, y, f"n.e. ({p_text})", ha="center", va="center", fontsize=6.5,
                               color=colour, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
                else:
                    hr_ax.errorbar(c["hazard_ratio"], y, xerr=[[c["hazard_ratio"] - c["hazard_ratio_lower"]],
                                                               [c["hazard_ratio_upper"] - c["hazard_ratio"]]],
                                   fmt="s", color=colour, markersize=4, capsize=2, linewidth=1)
                    hr_ax.annotate(p_text, (c["hazard_ratio_upper"], y), xytext=(3, 0),
                                   textcoords="offset points", va="center", fontsize=6.5, color=colour)
                d = pair.filter(pl.col("schedule") == schedule).row(0, named=True)
                mean = d["mean_difference_months"]
                low, high = d["mean_difference_lower_months"], d["mean_difference_upper_months"]
                if low is not None:
                    diff_ax.errorbar(mean, y + 0.12, xerr=[[mean - low], [high - mean]], fmt="o",
                                     color=colour, markersize=4, capsize=2, linewidth=1)
                else:
                    diff_ax.plot(mean, y + 0.12, "o", color=colour, markersize=4)
                median = d["median_difference_months"]
                m_low, m_high = d["median_difference_lower_months"], d["median_difference_upper_months"]
                if m_low is not None:
                    diff_ax.errorbar(median, y - 0.12, xerr=[[median - m_low], [m_high - median]], fmt="D",
                                     color=colour, mfc="white", markersize=3.5, capsize=2, linewidth=0.8)
                later, tied, earlier = d["later_share"], d["tied_share"], d["earlier_share"]
                share_ax.barh(y, later, color=colour, height=0.6)
                share_ax.barh(y, tied, left=later, color="0.85", height=0.6)
                share_ax.barh(y, earlier, left=later + tied, color=_shade(colour, 1.7), height=0.6,
                              hatch="////", edgecolor=colour, linewidth=0)
            hr_ax.axvline(1.0, color="0.5", linewidth=0.7, linestyle=(0, (2, 2)))
            hr_ax.set_xscale("log")
            low, high = 0.1, 10.0
            if hr_values:
                low, high = min(min(hr_values), 0.8) / 1.5, max(max(hr_values), 1.25) * 3
            hr_ax.set_xlim(low, high)
            decades = math.log10(high / low)
            hr_ax.set_xlabel(f"Hazard ratio vs {reference} (95 % CI; n.e. not estimable)")
            diff_ax.axvline(0.0, color="0.5", linewidth=0.7, linestyle=(0, (2, 2)))
            diff_ax.set_xlabel(f"Paired difference vs {reference} (months)")
            share_ax.set_xlim(0, 1)
            share_ax.set_xlabel("Share of patients")
            for ax in (hr_ax, diff_ax, share_ax):
                ax.set_yticks(positions, labels=schedules if ax is hr_ax else [""] * len(schedules))
                ax.set_ylim(len(schedules) - 0.5, -0.5)
            for label, schedule in zip(hr_ax.get_yticklabels(), schedules, strict=True):
                label.set_color(palette.colour(schedule))
            hr_ax.set_ylabel(ENDPOINT_LABELS[endpoint].capitalize(), fontweight="bold", labelpad=6)
            hr_ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
            hr_ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            hr_ax.xaxis.set_minor_formatter(NullFormatter())
            if row == 0:
                hr_ax.set_title("Hazard ratio (Cox) and log-rank p", loc="left")
                diff_ax.set_title("Paired difference in restricted time", loc="left")
                share_ax.set_title("Patients whose event came ...", loc="left")
        figure.legend(handles=[
            Line2D([], [], marker="o", color="0.3", linestyle="none", label="mean difference (95 % t CI)"),
            Line2D([], [], marker="D", mfc="white", color="0.3", linestyle="none",
                   label="median difference (sign-test CI)"),
            Patch(color="0.35", label="later than on the reference"), Patch(color="0.85", label="same day"),
            Patch(facecolor="0.85", edgecolor="0.35", hatch="////", label="earlier")],
            loc="outside lower center", ncols=5)
        figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    return figure


def format_p(p: float | None, with_sign: bool = False) -> str:
    """A p-value as text: 2 significant digits below 0.01, < 0.0001 below that."""
    if p is None or not math.isfinite(p):
        return "n/a"
    text = "<0.0001" if p < 1e-4 else f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
    if not with_sign:
        return text
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def mechanism_figure(mix: pl.DataFrame, palette: Palette, title: str) -> Figure:
    """Stacked bars per schedule: each mechanism's share of the progressions, with the number
    progressed out of all patients above each bar."""
    schedules = [s for s in palette.schedules if s in set(mix["schedule"].cast(pl.String))]
    mechanisms = mix["mechanism"].unique(maintain_order=True).cast(pl.String).to_list()
    mechanisms = sorted(mechanisms, key=lambda m: list(palette.mechanisms).index(m)
                        if m in palette.mechanisms else len(palette.mechanisms))
    with mpl.rc_context(STYLE):
        figure = new_figure(max(4.0, 1.0 + 0.65 * len(schedules)), 3.6)
        ax = figure.subplots()
        bottom = np.zeros(len(schedules))
        for mechanism in mechanisms:
            shares = np.array([
                (mix.filter((pl.col("schedule") == s) & (pl.col("mechanism") == mechanism))
                 ["share_of_progressed"].fill_null(0.0).sum()) for s in schedules])
            ax.bar(range(len(schedules)), shares, bottom=bottom, width=0.7, label=mechanism,
                   color=palette.mechanisms.get(mechanism, OTHER_COLOUR), edgecolor="white", linewidth=0.4)
            bottom += shares
        for x, schedule in enumerate(schedules):
            rows = mix.filter(pl.col("schedule") == schedule)
            ax.text(x, 1.02, f"{rows['progressed'][0]}/{rows['patients'][0]}", ha="center", va="bottom",
                    fontsize=6)
        ax.set_xticks(range(len(schedules)), labels=schedules, rotation=30, ha="right")
        for label, schedule in zip(ax.get_xticklabels(), schedules, strict=True):
            label.set_color(palette.colour(schedule))
        ax.set_ylim(0, 1.1)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("Share of progressions (above: progressed / patients)")
        ax.set_title(title, loc="left")
        figure.legend(title="mechanism", loc="outside right upper", reverse=True)
    return figure


def emergence_figure(curves: pl.DataFrame, until_days: float, palette: Palette, title: str) -> Figure:
    """Cumulative share of patients with each mechanism established (top) and seen by ctDNA
    (bottom) by each time, one panel per mechanism, one line per schedule."""
    mechanisms = [m for m in palette.mechanisms if m in set(curves["mechanism"].cast(pl.String))]
    events = curves["event"].cast(pl.String).unique(maintain_order=True).to_list()
    events = [e for e in ("established", "ctDNA-detected") if e in events]
    schedules = [s for s in palette.schedules if s in set(curves["schedule"].cast(pl.String))]
    until_months = until_days / DAYS_PER_MONTH
    with mpl.rc_context(STYLE):
        figure = new_figure(1.0 + 2.1 * max(len(mechanisms), 1), 0.9 + 1.9 * len(events))
        axes = figure.subplots(len(events), max(len(mechanisms), 1), squeeze=False, sharey=True)
        for row, event in enumerate(events):
            for column, mechanism in enumerate(mechanisms):
                ax = axes[row][column]
                rows = curves.filter((pl.col("event") == event) & (pl.col("mechanism") == mechanism))
                unmeasured = event == "ctDNA-detected" and mechanism in palette.phenotypes
                for schedule in [] if unmeasured else schedules:
                    line = rows.filter(pl.col("schedule") == schedule)
                    if line.height == 0:  # never happened under this schedule: a line at 0
                        months, share = np.array([0.0, until_months]), np.zeros(2)
                    else:
                        months = np.concatenate([[0.0], line["month"].clip(0, None).to_numpy(),
                                                 [until_months]])
                        share = line["cumulative_share"].to_numpy()
                        share = np.concatenate([[0.0 if line["month"][0] > 0 else share[0]], share,
                                                [share[-1]]])
                    ax.step(months, share, where="post", linewidth=1.1, label=schedule,
                            **palette.line(schedule))
                if unmeasured:
                    ax.text(0.5, 0.5, "not measured\n(a phenotype)", transform=ax.transAxes, ha="center",
                            va="center", fontsize=7, color="0.4")
                _month_axis(ax, until_days, label=row == len(events) - 1)
                ax.set_ylim(-0.02, 1.02)
                if row == 0:
                    ax.set_title(mechanism, color=palette.mechanisms.get(mechanism, "black"))
                if column == 0:
                    ax.set_ylabel(f"Share of patients, {event}")
        handles = [Line2D([], [], linewidth=1.4, label=s, **palette.line(s)) for s in schedules]
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(schedules), 9))
        figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    return figure


def exposure_figure(exposure: pl.DataFrame, summary: pl.DataFrame, palette: Palette, title: str) -> Figure:
    """Benefit against exposure: restricted mean time to progression and to lethal burden
    (95 % t CI) against mean total drug-days per patient (95 % t CI), one point per schedule."""
    endpoints = [e for e in ("ttp", "death") if e in set(summary["endpoint"].cast(pl.String))]
    schedules = [s for s in palette.schedules if s in set(exposure["schedule"].cast(pl.String))]
    with mpl.rc_context(STYLE):
        figure = new_figure(3.3 * len(endpoints) + 1.4, 3.3)
        axes = figure.subplots(1, len(endpoints), squeeze=False)[0]
        for ax, endpoint in zip(axes, endpoints, strict=True):
            for schedule in schedules:
                cost = exposure.filter(pl.col("schedule") == schedule).row(0, named=True)
                gain = summary.filter((pl.col("schedule") == schedule)
                                      & (pl.col("endpoint") == endpoint)).row(0, named=True)
                x, y = cost["total_drug_days"], gain["restricted_mean_months"]
                xerr = _error(x, cost["total_drug_days_lower"], cost["total_drug_days_upper"])
                yerr = _error(y, gain["restricted_mean_lower_months"], gain["restricted_mean_upper_months"])
                ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=palette.markers[schedule], mfc="none",
                            color=palette.colour(schedule), markersize=6, capsize=0, linewidth=1,
                            markeredgewidth=1.3, label=schedule)
            ax.set_xlabel("Mean drug-days per patient\n(standard doses given, all drugs)")
            ax.set_ylabel(f"Restricted mean {ENDPOINT_LABELS[endpoint]} (months)")
            ax.margins(x=0.12, y=0.12)
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    return figure


def _error(value: float, lower: float | None, upper: float | None) -> list[list[float]] | None:
    if lower is None or upper is None:
        return None
    return [[value - lower], [upper - value]]


def _draw_muller(ax, days: np.ndarray, fractions: dict[tuple[str, str], np.ndarray], genotypes: list[str],
                 phenotypes: list[str], palette: Palette) -> None:
    """Fill the nested bands of one composition (fractions at ``days``) on ``ax``."""
    months = days / DAYS_PER_MONTH
    for genotype, phenotype, lower, upper in muller_bands(fractions, genotypes, phenotypes):
        if not np.any(upper - lower > 0):
            continue
        colour = palette.genotype_colour(genotype, genotypes)
        index = phenotypes.index(phenotype)
        # An edge in the band's own fill colour hides the anti-aliasing seams between bands.
        if index == 0:
            ax.fill_between(months, lower, upper, facecolor=colour, edgecolor=colour, linewidth=0.3)
        else:
            # The hatch takes the edge colour (matplotlib's default): the band gets a thin outline.
            ax.fill_between(months, lower, upper, facecolor=_shade(colour, 1.55), edgecolor=colour,
                            hatch=PHENOTYPE_HATCHES[(index - 1) % len(PHENOTYPE_HATCHES)], linewidth=0.3)


def muller_legend(figure: Figure, genotypes: list[str], phenotypes: list[str], palette: Palette,
                  extra: list, columns: int = 6, location: str = "outside lower center") -> None:
    handles = [Patch(color=palette.genotype_colour(g, genotypes), label=g) for g in genotypes]
    handles += [Patch(facecolor="white", edgecolor="0.3", hatch=PHENOTYPE_HATCHES[(i - 1) % 4],
                      label=f"{p} (any genotype)") for i, p in enumerate(phenotypes) if i > 0]
    everything = handles + extra
    figure.legend(handles=everything, loc=location, ncols=min(len(everything), columns))


def _fractions_by_class(frame: pl.DataFrame, days: np.ndarray, value: str
                        ) -> dict[tuple[str, str], np.ndarray]:
    """(genotype, phenotype) -> ``value`` at each of ``days`` (0 where the class has no row)."""
    position = {d: i for i, d in enumerate(days.tolist())}
    out: dict[tuple[str, str], np.ndarray] = {}
    for (genotype, phenotype), rows in frame.group_by(["genotype", "phenotype"], maintain_order=True):
        series = np.zeros(len(days))
        series[[position[d] for d in rows["day"].to_list()]] = rows[value].to_numpy()
        out[(genotype, phenotype)] = series
    return out


def _panel_grid(count: int, max_columns: int = 3) -> tuple[int, int]:
    columns = min(count, max_columns)
    return math.ceil(count / columns), columns


def muller_mean_figure(composition: pl.DataFrame, burden: pl.DataFrame, patients: dict[str, int],
                       until_days: float, genotypes: list[str], phenotypes: list[str], palette: Palette,
                       title: str) -> Figure:
    """Mean clone composition per schedule (Muller plot) over the replicates with tumour at
    each recorded day (neither cured nor at lethal burden), with the share of replicates
    with tumour (dotted, left axis) and the median total cells of those with its
    interquartile band (black, right axis, log)."""
    schedules = [s for s in palette.schedules if s in set(burden["schedule"].cast(pl.String))]
    rows_n, columns = _panel_grid(len(schedules))
    with mpl.rc_context(STYLE):
        figure = new_figure(3.3 * columns, 2.3 * rows_n + 0.9)
        axes = figure.subplots(rows_n, columns, squeeze=False)
        burden_axes = []
        for index, schedule in enumerate(schedules):
            ax = axes[index // columns][index % columns]
            alive = burden.filter(pl.col("schedule") == schedule)  # replicates with tumour
            days = alive["day"].to_numpy()
            frame = composition.filter(pl.col("schedule") == schedule)
            _draw_muller(ax, days, _fractions_by_class(frame, days, "mean_fraction"), genotypes, phenotypes,
                         palette)
            alive_share = alive["with_tumour"].to_numpy() / patients[schedule]
            ax.plot(days / DAYS_PER_MONTH, alive_share, color="black", linestyle=":", linewidth=1.0)
            few = np.flatnonzero(alive_share < FEW_ALIVE_SHARE)
            if len(few):
                ax.axvspan(days[few[0]] / DAYS_PER_MONTH, days[-1] / DAYS_PER_MONTH, color="white", alpha=0.6,
                           linewidth=0, zorder=2)
            ax.set_ylim(0, 1)
            _month_axis(ax, until_days, label=index // columns == rows_n - 1)
            if index % columns == 0:
                ax.set_ylabel("Mean fraction of tumour")
            ax.set_title(schedule, loc="left", color=palette.colour(schedule))
            right = ax.twinx()
            right.fill_between(days / DAYS_PER_MONTH, alive["lower_quartile_cells"].to_numpy(),
                               alive["upper_quartile_cells"].to_numpy(), color="black", alpha=0.18,
                               linewidth=0)
            right.plot(days / DAYS_PER_MONTH, alive["median_cells"].to_numpy(), color="black", linewidth=1.1)
            right.set_yscale("log")
            right.spines["right"].set_visible(True)
            burden_axes.append(right)
            if index % columns == columns - 1 or index == len(schedules) - 1:
                right.set_ylabel("Total cells (median, IQR)")
        _share_log_limits(burden_axes)
        for index in range(len(schedules), rows_n * columns):
            axes[index // columns][index % columns].set_visible(False)
        extra = [Line2D([], [], color="black", linestyle=":", label="share of patients with tumour"),
                 Patch(facecolor="0.9", label=f"faded: < {FEW_ALIVE_SHARE:.0%} of patients with tumour"),
                 Line2D([], [], color="black", label="median total cells of those (right axis)")]
        muller_legend(figure, genotypes, phenotypes, palette, extra)
        figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    return figure


def _share_log_limits(axes: list) -> None:
    """One log range for all burden axes (comparable panels), whole decades."""
    limits = [ax.get_ylim() for ax in axes]
    if not limits:
        return
    low = 10 ** math.floor(math.log10(max(min(lo for lo, _ in limits), 1.0)))
    high = 10 ** math.ceil(math.log10(max(max(hi for _, hi in limits), 10.0)))
    for ax in axes:
        ax.set_ylim(low, high)
        ax.yaxis.set_major_locator(LogLocator(numticks=6))


def muller_replicates_figure(cells: pl.DataFrame, events: pl.DataFrame, phase_changes: pl.DataFrame,
                             replicates: list[int], until_days: float, genotypes: list[str],
                             phenotypes: list[str], palette: Palette, title: str) -> Figure:
    """Clone composition of individual patients (columns; the same virtual patient down a
    column) under each schedule (rows). Right axis: total cells (log); dashed line: the
    schedule's progression; triangles: phase changes (a drug added or paused); cross: lethal
    burden; circle: cure."""
    schedules = [s for s in palette.schedules if s in set(cells["schedule"].cast(pl.String))]
    # An explicit layout in inches: constrained layout can collapse on this grid of twin axes.
    panel_width, panel_height, gap = max(2.4, 6.0 / len(replicates)), 1.1, 0.28
    left, right, top, legend_rows = 0.85, 0.75, 0.6, math.ceil((len(genotypes) + len(phenotypes) + 4) / 4)
    bottom = 0.5 + 0.2 * legend_rows
    width = left + right + len(replicates) * panel_width + (len(replicates) - 1) * gap
    height = top + bottom + len(schedules) * panel_height + (len(schedules) - 1) * gap
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(width, height))
        figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                               top=1 - top / height, wspace=gap / panel_width, hspace=gap / panel_height)
        axes = figure.subplots(len(schedules), len(replicates), squeeze=False, sharex=True, sharey=True)
        burden_axes = []
        for row, schedule in enumerate(schedules):
            for column, replicate in enumerate(replicates):
                ax = axes[row][column]
                frame = cells.filter((pl.col("schedule") == schedule) & (pl.col("replicate") == replicate))
                days = np.unique(frame["day"].to_numpy())
                total = frame.group_by("day").agg(pl.col("cells").sum()).sort("day")["cells"].to_numpy()
                frame = frame.with_columns(
                    (pl.col("cells") / pl.col("cells").sum().over("day")).fill_nan(0.0).alias("fraction"))
                _draw_muller(ax, days, _fractions_by_class(frame, days, "fraction"), genotypes, phenotypes,
                             palette)
                right = ax.twinx()
                right.plot(days / DAYS_PER_MONTH, np.where(total > 0, total, np.nan), color="black",
                           linewidth=0.9)
                right.set_yscale("log")
                right.spines["right"].set_visible(True)
                if column < len(replicates) - 1:
                    right.tick_params(labelright=False)
                burden_axes.append(right)
                changes = phase_changes.filter((pl.col("schedule") == schedule) & (pl.col("phase_day") > 0)
                                               & (pl.col("replicate") == replicate))
                ax.plot(changes["phase_day"].to_numpy() / DAYS_PER_MONTH, np.full(changes.height, 1.0), "v",
                        color="black", markersize=3, clip_on=False, zorder=5)
                event = events.filter((pl.col("schedule") == schedule) & (pl.col("replicate") == replicate))
                if event.height:
                    e = event.row(0, named=True)
                    if e["ttp_days"] is not None:
                        ax.axvline(e["ttp_days"] / DAYS_PER_MONTH, color="black", linestyle="--",
                                   linewidth=0.8)
                    if e["death_day"] is not None and len(total):
                        right.plot(e["death_day"] / DAYS_PER_MONTH, total[-1], "x", color="black",
                                   markersize=5)
                    if e["extinction_day"] is not None:
                        ax.plot(e["extinction_day"] / DAYS_PER_MONTH, 0.5, "o", mfc="white", color="black",
                                markersize=4)
                ax.set_ylim(0, 1)
                _month_axis(ax, until_days, label=False)
                if row == 0:
                    ax.set_title(f"patient {replicate}", loc="left")
                if column == 0:
                    ax.set_ylabel(f"{schedule}\nfraction", color=palette.colour(schedule))
                if column == len(replicates) - 1:
                    right.set_ylabel("cells")
                if row == len(schedules) - 1:
                    ax.tick_params(labelbottom=True)
        _share_log_limits(burden_axes)
        figure.text(0.5, (0.2 * legend_rows + 0.12) / height, "Months since the start of therapy",
                    ha="center", va="bottom")
        extra = [Line2D([], [], color="black", label="total cells (right axis)"),
                 Line2D([], [], color="black", linestyle="--", label="progression"),
                 Line2D([], [], color="black", marker="v", linestyle="none", markersize=3.5,
                        label="phase change"),
                 Line2D([], [], color="black", marker="x", linestyle="none", label="lethal burden"),
                 Line2D([], [], color="black", marker="o", mfc="white", linestyle="none", label="cure")]
        muller_legend(figure, genotypes, phenotypes, palette, extra, columns=4, location="lower center")
        figure.suptitle(title, x=0.01, y=1 - 0.1 / height, ha="left", va="top", fontsize=9)
    return figure


def sweep_figure(parameter: str, label: str, summary: pl.DataFrame, paired: pl.DataFrame,
                 other_parameters: list[str], labels: dict[str, str], reference: str, palette: Palette,
                 title: str, endpoint: str = "ttp") -> Figure:
    """Median time to the endpoint (``ttp`` or ``death``, time to lethal burden; 95 % CI;
    hollow marker at the horizon: not reached) and the paired gain over the reference (mean
    difference in restricted time, 95 % t CI) against one swept parameter, one line per
    schedule; one column per combination of the other swept parameters when there are few
    (else markers only, no lines)."""
    summary = summary.filter(pl.col("endpoint") == endpoint)
    paired = paired.filter(pl.col("endpoint") == endpoint)
    endpoint_name, short = {"ttp": ("time to progression", "TTP"),
                   "death": ("time to lethal burden", "time to lethal burden")}[endpoint]
    combos = summary.select(other_parameters).unique(maintain_order=True) if other_parameters else None
    few = combos is None or combos.height <= 4
    groups = [None] if combos is None or not few else list(combos.iter_rows(named=True))
    values = summary[parameter].drop_nulls()
    numeric = values.dtype.is_numeric()
    log_x = numeric and values.min() > 0 and values.max() / values.min() > 100
    categories = values.unique(maintain_order=True).to_list() if not numeric else None
    schedules = [s for s in palette.schedules if s in set(summary["schedule"].cast(pl.String))]
    with mpl.rc_context(STYLE):
        figure = new_figure(0.8 + 3.0 * len(groups), 5.4)
        axes = figure.subplots(2, len(groups), squeeze=False, sharex=True, sharey="row")
        for column, group in enumerate(groups):
            chosen = pl.lit(True)
            if group is not None:
                for name, value in group.items():
                    chosen = chosen & (pl.col(name) == value if value is not None else pl.col(name).is_null())
            for schedule in schedules:
                rows = summary.filter(chosen & (pl.col("schedule") == schedule)).sort(parameter)
                x = _x(rows[parameter], categories)
                style = {"linestyle": palette.schedules[schedule][1] if few else "none",
                         "color": palette.colour(schedule), "marker": palette.markers[schedule]}
                median = rows["median_months"].to_numpy().astype(float)
                low = rows["median_lower_months"].to_numpy().astype(float)
                high = rows["median_upper_months"].to_numpy().astype(float)
                reached = np.isfinite(median)
                axes[0][column].errorbar(x[reached], median[reached],
                                         yerr=_bounds(median[reached], low[reached], high[reached]),
                                         markersize=4, capsize=2, linewidth=1, label=schedule, **style)
                horizon = rows["horizon_days"].to_numpy() / DAYS_PER_MONTH
                axes[0][column].plot(x[~reached], horizon[~reached], palette.markers[schedule], mfc="white",
                                     color=palette.colour(schedule), markersize=5)
                if schedule == reference:
                    continue
                gain = paired.filter(chosen & (pl.col("schedule") == schedule)).sort(parameter)
                gx = _x(gain[parameter], categories)
                mean = gain["mean_difference_months"].to_numpy().astype(float)
                axes[1][column].errorbar(gx, mean, yerr=_bounds(mean, gain["mean_difference_lower_months"]
                                                                .to_numpy().astype(float),
                                                                gain["mean_difference_upper_months"]
                                                                .to_numpy().astype(float)),
                                         markersize=4, capsize=2, linewidth=1, **style)
            axes[1][column].axhline(0, color="0.5", linewidth=0.7, linestyle=(0, (2, 2)))
            if group is not None:
                heading = "\n".join(f"{labels[k]} = {format_value(v)}" for k, v in group.items())
                axes[0][column].set_title(heading, loc="left", fontsize=7.5)
            axes[1][column].set_xlabel(label)
            for ax in axes[:, column]:
                if log_x:
                    ax.set_xscale("log")
                if categories is not None:
                    ax.set_xticks(range(len(categories)), labels=[str(c) for c in categories], rotation=30)
        axes[0][0].set_ylabel(f"Median {endpoint_name}\n(months, 95 % CI)")
        axes[1][0].set_ylabel(f"Paired gain vs {reference}:\nmean Δ restricted {short} (months)")
        handles = [Line2D([], [], marker=palette.markers[s], markersize=4, label=s, **palette.line(s))
                   for s in schedules]
        handles.append(Line2D([], [], marker="o", mfc="white", color="0.3", linestyle="none",
                              label="hollow: median not reached (drawn at the horizon)"))
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
        figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    return figure


def _x(column: pl.Series, categories: list | None) -> np.ndarray:
    if categories is None:
        return column.to_numpy().astype(float)
    return np.array([categories.index(v) for v in column.to_list()], dtype=float)


def _bounds(value: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Error-bar extents; NaN bounds (not estimable) become 0 (no bar on that side)."""
    below = np.where(np.isfinite(lower), value - lower, 0.0)
    above = np.where(np.isfinite(upper), upper - value, 0.0)
    return np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def format_value(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
