#!/usr/bin/env python
"""Calibrate configs/egfr_nsclc.yaml: print the model's clinical numbers beside the targets.

Targets (issue 5; docs/egfr_parameters.md gives the sources):

* median PFS 18.9 months on first-line osimertinib, 10.2 months on first-generation
  TKIs (FLAURA, Soria et al. NEJM 2018);
* at progression on osimertinib: MET amplification in ~15-16 %, C797S in ~6-7 %, no
  T790M (FLAURA ctDNA, Chmielecki et al. Nat Commun 2023); the rest, ~75 %, with no
  genetic mechanism identified (here: non-genetic, i.e. drug-tolerant cells);
* objective response (diameter -30 % or more) in ~80 %;
* post-nadir regrowth with a volume doubling time of ~6-7 months.

How the model's numbers are computed (from the ``patients`` table only):

* median PFS: ``clonesim.analysis.summary.schedule_summary``'s exact median time to
  progression (censoring happens only at the horizon), in months of 365.25/12 days;
* mechanism shares: ``mechanism_at_progression`` among progressed patients;
  phenotype mechanisms (persister, dtep) are the non-genetic group;
* objective response: best response CR or PR;
* regrowth doubling: progression means the volume (cells) reached 1.2^3 = 1.728x its
  nadir, so a patient's mean volume doubling time from nadir to progression is
  (ttp_days - nadir_day) * ln 2 / ln 1.728; the median over progressed patients.

The calibration itself is a sequence of 1-D searches, each on the parameter that
moves one target most (docs/egfr_parameters.md, "Calibration"), with ``--set`` to try
values: ``--set alterations.MET_amp.mutation_rate_per_division=3e-9``. ``--fit`` runs
the search for the two rates that set the osimertinib median and the MET share.

Run:  python scripts/calibrate_egfr.py [--replicates 400] [--set PATH=VALUE ...] [--fit]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import polars as pl
import yaml

import clonesim
from clonesim.analysis.summary import DAYS_PER_MONTH, schedule_summary
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
]


def config_with(overrides: dict[str, object]) -> dict:
    """The config (``--config``, default the EGFR one) with its two FLAURA arms only, and
    the overrides applied."""
    config = load_config(config_path).model_dump(mode="json", by_alias=True, exclude_none=True)
    config["schedules"] = {arm: config["schedules"][arm] for arm in ARMS}
    for path, value in overrides.items():
        set_path(config, path, value)
    return config


def measure(config: dict, replicates: int, seed: int) -> dict[str, float]:
    """The model's value of every target quantity (see the module docstring)."""
    patients = clonesim.simulate(config, replicates=replicates, seed=seed).patients
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
    values["_iqr_osimertinib_months"] = tuple(
        float(ttp.quantile(q, interpolation="lower")) / DAYS_PER_MONTH for q in (0.25, 0.75))
    return values


def show(values: dict[str, float]) -> int:
    """Print model vs target; returns how many targets are missed."""
    missed = 0
    print(f"{'quantity':<48s} {'target':>28s} {'model':>8s}  met")
    for name, text, low, high in TARGETS:
        value = values[name]
        ok = low <= value <= high
        missed += not ok
        shown = f"{value:.1%}" if "%" in text else f"{value:.1f}"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="config to calibrate")
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a config value (YAML value), repeatable")
    parser.add_argument("--fit", action="store_true",
                        help="search the persister->dtep rate (osimertinib median) and the "
                             "MET_amp rate (MET share) before printing")
    args = parser.parse_args(argv)
    global config_path
    config_path = args.config
    overrides = {}
    for item in args.set:
        path, _, text = item.partition("=")
        overrides[path] = yaml.safe_load(text)
    started = time.perf_counter()
    if args.fit:
        dtep = "switching.2.drug_induced_rate_per_day"
        current = get_path(config_with(overrides), dtep)
        overrides[dtep] = bisect(dtep, current / 4, current * 4, "median PFS osimertinib (months)",
                                 18.9, overrides, args.replicates, args.seed, 6, increasing=False)
        met = "alterations.MET_amp.mutation_rate_per_division"
        current = get_path(config_with(overrides), met)
        overrides[met] = bisect(met, current / 4, current * 4, "MET_amp at progression, osimertinib",
                                0.155, overrides, args.replicates, args.seed, 6, increasing=True)
        print("fitted: " + ", ".join(f"{k}={v:.4g}" for k, v in overrides.items()))
    values = measure(config_with(overrides), args.replicates, args.seed)
    print(f"\n{config_path.name}{' with ' + str(overrides) if overrides else ''}: "
          f"{args.replicates} patients x {len(ARMS)} arms, seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s")
    missed = show(values)
    print(f"{len(TARGETS) - missed} of {len(TARGETS)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
