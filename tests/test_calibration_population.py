"""The virtual population of scripts/calibrate_egfr.py: every patient type is the config's
typical patient with all cell rates per day scaled by one log-normal pace and its own EGFR
dependence, stratified by a Latin hypercube."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from clonesim.batch.sweep import get_path
from clonesim.config import config_from_mapping, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("calibrate_egfr", ROOT / "scripts" / "calibrate_egfr.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "configs" / "egfr_nsclc.yaml").model_dump(mode="json", by_alias=True,
                                                                          exclude_none=True)


TYPES, SIGMA = 400, 0.6


@pytest.fixture(scope="module")
def points(calibration, config):
    return calibration.Population(TYPES, SIGMA, (0.1, 0.4), seed=11).points(config)


def test_every_rate_of_a_type_is_scaled_by_one_pace(points, config):
    rate_paths = [path for path in points[0] if path.endswith("_per_day")]
    # Every phenotype's and switch's rate per day, nothing else (no PK, no mutation rates).
    expected = {f"phenotypes.{name}.{key}" for name, phenotype in config["phenotypes"].items()
                for key in phenotype if key.endswith("_per_day")}
    expected |= {f"switching.{i}.{key}" for i, switch in enumerate(config["switching"])
                 for key in switch if key.endswith("_per_day")}
    assert set(rate_paths) == expected
    reference = "phenotypes.sensitive.birth_rate_per_day"
    for point in points:
        pace = point[reference] / get_path(config, reference)
        for path in rate_paths:
            assert point[path] == pytest.approx(get_path(config, path) * pace, rel=1e-12, abs=0.0)


def test_paces_are_log_normal_and_stratified(points, config):
    reference = "phenotypes.sensitive.birth_rate_per_day"
    log_paces = np.log([p[reference] / get_path(config, reference) for p in points])
    # Latin hypercube: exactly one pace in each of the TYPES equal-probability strata of
    # N(0, SIGMA^2), which is stronger than any sampling tolerance.
    strata = np.floor(stats.norm.cdf(log_paces / SIGMA) * TYPES).astype(int)
    assert sorted(strata) == list(range(TYPES))
    # Kolmogorov-Smirnov against the log-normal (threshold p > 0.01; stratified, so the
    # statistic is ~1/TYPES).
    assert stats.kstest(log_paces, "norm", args=(0.0, SIGMA)).pvalue > 0.01


def test_dependences_are_uniform_on_the_range_and_stratified(points, calibration):
    shares = np.array([p[calibration.DEPENDENCE_PATH] for p in points])
    assert shares.min() >= 0.1 and shares.max() <= 0.4
    strata = np.floor((shares - 0.1) / 0.3 * TYPES).astype(int)
    assert sorted(strata) == list(range(TYPES))


def test_population_is_a_pure_function_of_its_seed(calibration, config, points):
    again = calibration.Population(TYPES, SIGMA, (0.1, 0.4), seed=11).points(config)
    other = calibration.Population(TYPES, SIGMA, (0.1, 0.4), seed=12).points(config)
    assert again == points and other != points


def test_every_type_is_a_valid_config(points, config):
    for point in points[:20]:
        data = {**config, "sweep": {"points": [point]}}
        config_from_mapping(data)  # raises on an invalid point
    assert all(math.isfinite(v) and v >= 0 for p in points for v in p.values())


@pytest.mark.parametrize("argv, message", [
    (["--population", "--replicates", "10", "--types", "3"], "--types: must divide --replicates"),
    (["--population", "--dependence", "0.5,0.2"], "need 0 <= LOW < HIGH <= 1"),
    (["--fit", "met,foo"], "unknown foo"),
])
def test_bad_options_are_one_line_errors(calibration, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        calibration.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
