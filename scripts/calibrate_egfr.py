#!/usr/bin/env python
"""Calibrate configs/egfr_nsclc.yaml: print the model's clinical numbers beside the targets.

Targets (issue 5; docs/egfr_parameters.md gives the sources):

* median PFS 18.9 months on first-line osimertinib, 10.2 months on first-generation
  TKIs (FLAURA, Soria et al. NEJM 2018);
* at progression on osimertinib: MET amplification in ~15-16 %, C797S in ~6-7 %, no
  T790M (FLAURA ctDNA, Chmielecki et al. Nat Commun 2023); the rest, ~75 %, with no
  genetic mechanism identified (here: non-genetic, i.e. drug-tolerant cells);
* objective response (diameter -30 % or more) in ~80 %;
* post-nadir regrowth with a volume doubling time of ~6-7 months;
* (not in the issue, but FLAURA's headline) hazard ratio of progression, osimertinib
  against gefitinib, 0.46 (95 % CI 0.37-0.57): it measures how much the two arms' PFS
  distributions overlap, i.e. the between-patient spread.

How the model's numbers are computed (from the ``patients`` table only):

* median PFS: ``clonesim.analysis.summary.schedule_summary``'s exact median time to
  progression (censoring happens only at the horizon), in months of 365.25/12 days;
* mechanism shares: ``mechanism_at_progression`` among progressed patients;
  phenotype mechanisms (persister, dtep) are the non-genetic group;
* objective response: best response CR or PR;
* regrowth doubling: progression means the volume (cells) reached 1.2^3 = 1.728x its
  nadir, so a patient's mean volume doubling time from nadir to progression is
  (ttp_days - nadir_day) * ln 2 / ln 1.728; the median over progressed patients;
* hazard ratio: lifelines' Cox model of time to progression on the arm (censored at
  the horizon).

Two ways to run it:

* one patient type (the config as it is): every virtual patient shares its parameters
  and differs only by chance (which cells mutate, switch, divide and die);
* ``--population``: a *virtual population* of patient types around the config, which
  is its typical patient. Each type draws (seeded by ``--seed``) two things: its
  **pace**, a factor multiplying every cell rate per day (birth, death, drug kill,
  switching; log-normal with median 1 and ``--pace-sigma``), so a type is the typical
  tumour run faster or slower (mutations per division, and so the Luria-Delbrueck
  statistics of pre-existing clones, are unchanged); and its **EGFR dependence**, the
  sensitive cells' ``cytostatic_share`` (uniform on ``--dependence LOW,HIGH``), which
  sets the depth of response and hence whether the tumour responds at all. The
  population runs as a sweep (one point per type, ``--replicates`` spread evenly over
  the types), pooled. ``--write-sweep FILE`` writes it as a config for ``clonesim
  sweep``, whose report ``clonesim report --pool`` pools the same way.

The calibration itself is a sequence of 1-D searches, each on the parameter that
moves one target most (docs/egfr_parameters.md, "Calibration"), with ``--set`` to try
values: ``--set alterations.MET_amp.mutation_rate_per_division=3e-9``. ``--fit`` runs
those searches in turn (``--fit met,c797s`` only some): the MET_amp and C797S rates for
their shares, the persister->dtep rate for the osimertinib median, the T790M rate for the
gefitinib median.

Run:  python scripts/calibrate_egfr.py [--replicates 1000] [--set PATH=VALUE ...] [--fit]
           [--population [--types K] [--pace-sigma S] [--dependence LOW,HIGH]
            [--write-sweep FILE]]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from scipy import stats
from scipy.stats import qmc

import clonesim
from clonesim.analysis.summary import DAYS_PER_MONTH, schedule_summary
from clonesim.analysis.survival import compare_to_reference, endpoint_outcomes
from clonesim.batch.sweep import get_path, set_path
from clonesim.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "egfr_nsclc.yaml"
PROGRESSION_VOLUME = 1.2**3  # RECIST +20 % in diameter, as a volume ratio
ARMS = ("gefitinib", "osimertinib")
config_path = CONFIG  # --config

#: (quantity, target text, target low, target high)
TARGETS = [
    ("median PFS gefitinib (months)", "10.2", 9.7, 10.7),
    ("median PFS osimertinib (months)", "18.9", 18.0, 19.8),
    ("MET_amp at progression, osimertinib", "15-16 %", 0.13, 0.18),
    ("C797S at progression, osimertinib", "6-7 %", 0.05, 0.08),
    ("T790M at progression, osimertinib", "0 %", 0.0, 0.01),
    ("non-genetic at progression, osimertinib", "~75 % (no mechanism found)", 0.6, 0.85),
    ("objective response, osimertinib", "~80 %", 0.75, 0.85),
    ("regrowth volume doubling, osimertinib (months)", "6-7", 6.0, 7.0),
    ("hazard ratio, osimertinib vs gefitinib", "0.46 (0.37-0.57)", 0.37, 0.57),
]
#: Sensitive-cell parameter that a population type draws as its EGFR dependence.
DEPENDENCE_PATH = "phenotypes.sensitive.cytostatic_share"


@dataclass(frozen=True)
class Population:
    """A virtual population (see the module docstring): ``types`` patient types, each with
    a pace factor exp(N(0, pace_sigma^2)) on every cell rate per day and an EGFR dependence
    (sensitive cytostatic share) uniform on ``dependence``, independent; drawn as a Latin
    hypercube seeded by ``seed``."""

    types: int
    pace_sigma: float
    dependence: tuple[float, float]
    seed: int

    def points(self, config: dict) -> list[dict[str, float]]:
        """One sweep point per type: every rate per day of ``config``'s phenotypes and
        switches times the type's pace, and its dependence."""
        rates = [(f"phenotypes.{name}.{key}", value)
                 for name, phenotype in config["phenotypes"].items()
                 for key, value in phenotype.items() if key.endswith("_per_day")]
        rates += [(f"switching.{index}.{key}", value)
                  for index, switch in enumerate(config.get("switching", []))
                  for key, value in switch.items() if key.endswith("_per_day")]
        # A Latin hypercube of the two quantiles: every stratum of pace and of dependence
        # is represented, so the population's make-up varies little with the seed.
        quantiles = qmc.LatinHypercube(d=2, seed=np.random.default_rng(self.seed)).random(self.types)
        paces = np.exp(self.pace_sigma * stats.norm.ppf(quantiles[:, 0]))
        low, high = self.dependence
        dependences = low + (high - low) * quantiles[:, 1]
        return [{**{path: float(value * pace) for path, value in rates}, DEPENDENCE_PATH: float(dependence)}
                for pace, dependence in zip(paces, dependences, strict=True)]


population: Population | None = None  # --population


def config_with(overrides: dict[str, object]) -> dict:
    """The config (``--config``, default the EGFR one) with its two FLAURA arms only, the
    overrides applied and, with ``--population``, the population's types as its sweep."""
    config = load_config(config_path).model_dump(mode="json", by_alias=True, exclude_none=True)
    config["schedules"] = {arm: config["schedules"][arm] for arm in ARMS}
    config.pop("sweep", None)
    for path, value in overrides.items():
        set_path(config, path, value)
    if population is not None:
        config["sweep"] = {"points": population.points(config)}
    return config


def hazard_ratio(patients: pl.DataFrame, horizon_days: float) -> float | None:
    """Cox hazard ratio of progression, osimertinib against gefitinib, as ``clonesim report``
    computes it (censored at the horizon; a population's points pooled); None when the arms
    are completely separated and it has no finite estimate."""
    pooled = patients.with_columns(pl.lit("all").alias("point"), pl.lit(horizon_days).alias("horizon_days"))
    outcomes = endpoint_outcomes(pooled, None).filter(pl.col("endpoint") == "ttp")
    comparison = compare_to_reference(outcomes, "gefitinib")
    return comparison.filter(pl.col("schedule").cast(pl.String) == "osimertinib")["hazard_ratio"].item()


def measure(config: dict, replicates: int, seed: int) -> dict[str, float]:
    """The model's value of every target quantity (see the module docstring); a population
    (a config with a sweep) is pooled, ``replicates`` spread evenly over its types."""
    points = len(config.get("sweep", {}).get("points", [])) or 1
    patients = clonesim.simulate(config, replicates=replicates // points, seed=seed).patients
    phenotypes = list(config["phenotypes"])[1:]
    values: dict[str, float] = {}
    summary = schedule_summary(patients)
    for arm in ARMS:
        months = summary.filter(pl.col("schedule") == arm)["median_ttp_months"].item()
        values[f"median PFS {arm} (months)"] = math.inf if months is None else months
    osimertinib = patients.filter(pl.col("schedule") == "osimertinib")
    progressed = osimertinib.filter(pl.col("progressed"))
    mechanism = progressed["mechanism_at_progression"].cast(pl.String)
    share = {name: float((mechanism == name).mean()) for name in set(mechanism.to_list())}
    for name in ("MET_amp", "C797S", "T790M"):
        values[f"{name} at progression, osimertinib"] = share.get(name, 0.0)
    values["non-genetic at progression, osimertinib"] = sum(share.get(p, 0.0) for p in phenotypes)
    values["objective response, osimertinib"] = float(
        osimertinib["best_response"].cast(pl.String).is_in(["CR", "PR"]).mean())
    doubling = ((progressed["ttp_days"] - progressed["nadir_day"])
                * math.log(2) / math.log(PROGRESSION_VOLUME) / DAYS_PER_MONTH)
    values["regrowth volume doubling, osimertinib (months)"] = float(doubling.median())
    values["_others"] = {k: v for k, v in share.items()
                         if k not in ("MET_amp", "C797S", "T790M", *phenotypes)}
    ttp = osimertinib["ttp_days"].fill_null(math.inf)
    values["hazard ratio, osimertinib vs gefitinib"] = hazard_ratio(
        patients, float(config["time"]["horizon_days"]))
    values["_iqr_osimertinib_months"] = tuple(
        float(ttp.quantile(q, interpolation="lower")) / DAYS_PER_MONTH for q in (0.25, 0.75))
    return values


def show(values: dict[str, float]) -> int:
    """Print model vs target; returns how many targets are missed."""
    missed = 0
    print(f"{'quantity':<48s} {'target':>28s} {'model':>8s}  met")
    for name, text, low, high in TARGETS:
        value = values[name]
        ok = value is not None and low <= value <= high
        missed += not ok
        if value is None:  # the hazard ratio, not estimable: the arms never overlap
            shown = "n.e."
        else:
            shown = f"{value:.1%}" if "%" in text else f"{value:.2g}" if "ratio" in name else f"{value:.1f}"
        print(f"{name:<48s} {text:>28s} {shown:>8s}  {'yes' if ok else 'NO'}")
    others = ", ".join(f"{k} {v:.1%}" for k, v in sorted(values["_others"].items()))
    low, high = values["_iqr_osimertinib_months"]
    print(f"other mechanisms at progression on osimertinib: {others or 'none'}")
    print(f"osimertinib PFS interquartile range: {low:.1f}-{high:.1f} months")
    return missed


def bisect(path: str, low: float, high: float, quantity: str, target: float, base: dict,
           replicates: int, seed: int, steps: int, increasing: bool) -> float:
    """Geometric bisection of one parameter so that ``quantity`` reaches ``target``
    (``increasing``: the quantity grows with the parameter)."""
    for _ in range(steps):
        middle = math.sqrt(low * high)
        value = measure(config_with({**base, path: middle}), replicates, seed)[quantity]
        print(f"  {path} = {middle:.4g}: {quantity} = {value:.3f}", flush=True)
        if (value < target) == increasing:
            low = middle
        else:
            high = middle
    return math.sqrt(low * high)


#: ``--fit NAMES``: name -> (parameter, target quantity, target value, the quantity grows
#: with the parameter). The names are searched one after the other, in the order given.
FIT = {
    "met": ("alterations.MET_amp.mutation_rate_per_division", "MET_amp at progression, osimertinib",
            0.155, True),
    "c797s": ("alterations.C797S.mutation_rate_per_division", "C797S at progression, osimertinib",
              0.065, True),
    "dtep": ("switching.2.drug_induced_rate_per_day", "median PFS osimertinib (months)", 18.9, False),
    "t790m": ("alterations.T790M.mutation_rate_per_division", "median PFS gefitinib (months)", 10.2, False),
}


def fit_names(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FIT]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown) or 'empty list'}; "
                                         f"choose from {', '.join(FIT)}")
    return names


def dependence_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        values = float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (got {text!r})") from None
    if not 0.0 <= values[0] < values[1] <= 1.0:
        raise argparse.ArgumentTypeError(f"need 0 <= LOW < HIGH <= 1 (got {text!r})")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="config to calibrate")
    parser.add_argument("--replicates", type=int, default=1000, help="virtual patients per arm")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a config value (YAML value), repeatable")
    parser.add_argument("--fit", type=fit_names, nargs="?", const=list(FIT), default=None,
                        metavar="NAMES",
                        help="before printing, search in turn (6 geometric bisection steps within "
                             "4x of the current value) the MET_amp and C797S rates (their shares "
                             "on osimertinib), the persister->dtep rate (osimertinib median) and "
                             "the T790M rate (gefitinib median); or only NAMES, e.g. met,c797s")
    parser.add_argument("--population", action="store_true",
                        help="a virtual population of patient types around the config")
    parser.add_argument("--types", type=int, default=None,
                        help="patient types in the population (default: replicates / 2)")
    parser.add_argument("--pace-sigma", type=float, default=0.6,
                        help="sd of log pace (every cell rate per day times the pace)")
    parser.add_argument("--dependence", type=dependence_range, default=(0.0, 0.45), metavar="LOW,HIGH",
                        help="EGFR dependence: the sensitive cytostatic share, uniform on LOW,HIGH")
    parser.add_argument("--write-sweep", type=Path, default=None, metavar="FILE",
                        help="write the config (with the population as its sweep) to FILE and stop")
    args = parser.parse_args(argv)
    if args.replicates < 1:
        parser.error(f"--replicates: must be at least 1 (got {args.replicates})")
    global config_path, population
    config_path = args.config
    if args.population or args.write_sweep:
        types = args.types if args.types is not None else max(1, args.replicates // 2)
        if types < 1 or args.replicates % types:
            parser.error(f"--types: must divide --replicates ({args.replicates}) (got {types})")
        if not args.pace_sigma >= 0:
            parser.error(f"--pace-sigma: must be 0 or more (got {args.pace_sigma})")
        population = Population(types, args.pace_sigma, args.dependence, args.seed)
    overrides = {}
    for item in args.set:
        path, _, text = item.partition("=")
        try:
            overrides[path] = float(text)  # 6e-6 too (YAML 1.1 would read it as text)
        except ValueError:
            overrides[path] = yaml.safe_load(text)
    if args.write_sweep:
        config = config_with(overrides)
        config.update(seed=args.seed, replicates=args.replicates // population.types,
                      name=f"{config['name']}-population")
        args.write_sweep.write_text(
            f"# Virtual population of {config_path.name}: written by scripts/calibrate_egfr.py "
            f"{' '.join(sys.argv[1:] if argv is None else argv)}\n"
            + yaml.safe_dump(config, sort_keys=False))
        print(f"wrote {args.write_sweep}: {population.types} patient types x "
              f"{config['replicates']} replicates; run it with clonesim sweep, report it with "
              "clonesim report --pool")
        return 0
    started = time.perf_counter()
    if args.fit:
        for path, quantity, target, increasing in (FIT[name] for name in args.fit):
            current = get_path(config_with(overrides), path)
            overrides[path] = bisect(path, current / 4, current * 4, quantity, target, overrides,
                                     args.replicates, args.seed, 6, increasing)
        print("fitted: " + ", ".join(f"{k}={v:.4g}" for k, v in overrides.items()))
    values = measure(config_with(overrides), args.replicates, args.seed)
    kind = (f"a population of {population.types} types (pace sigma {population.pace_sigma}, "
            f"dependence {population.dependence[0]}-{population.dependence[1]})"
            if population is not None else "one patient type")
    print(f"\n{config_path.name}{' with ' + str(overrides) if overrides else ''}: {kind}, "
          f"{args.replicates} patients x {len(ARMS)} arms, seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s")
    missed = show(values)
    print(f"{len(TARGETS) - missed} of {len(TARGETS)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
