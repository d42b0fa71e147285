"""Parameter sweeps (DESIGN §6): expand a config's ``sweep`` section into validated points.

A point is a set of overrides of config values by dotted path, e.g.
``{"tumor.initial_fractions.MET_amp": 1e-4, "phenotypes.persister.mutation_rate_multiplier": 10}``.
Each point has a stable id derived from its overrides alone (not from its
position in the sweep), and an integer ``stream`` derived from the id that
enters every replicate's random-stream key, so a point's results do not change
when other points are added or removed.

Every point's config is built and validated before anything runs: an unknown
path or a value the config contract rejects fails the whole sweep, naming the
point and the key.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clonesim.config.errors import ConfigError
from clonesim.config.load import config_from_mapping
from clonesim.config.schema import Config

#: Config mappings whose keys are names the user may add (a new key there is not a typo).
FREE_MAPPINGS = ("initial_fractions", "ic50_fold", "extra_death_per_day")
#: Streams of sweep points are 62-bit integers (0 is the config without a sweep).
STREAM_BITS = 62


@dataclass(frozen=True)
class SweepPoint:
    """One parameter point: its id, random-stream key, overrides and validated config."""

    id: str
    stream: int
    overrides: dict[str, Any]
    config: Config

    def value(self, path: str) -> Any:
        """The point's value at a dotted path (overridden or not); None when absent."""
        return get_path(self.config.model_dump(mode="json", by_alias=True), path)


def point_id(overrides: Mapping[str, Any]) -> str:
    """A stable 12-hex-digit id: a hash of the overrides' canonical JSON (keys sorted)."""
    canonical = json.dumps(dict(overrides), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def point_stream(identifier: str) -> int:
    """The point's element of every replicate's spawn key: the id read as an integer, >= 1."""
    return int(identifier, 16) % (2**STREAM_BITS - 1) + 1


def _parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for part in path.split("."):
        if not part:
            raise ConfigError(f"sweep: {path}", "a path has no empty parts")
        parts.append(int(part) if part.isdigit() else part)
    return parts


def get_path(data: Any, path: str) -> Any:
    """``data[path]`` for a dotted path (list items by index); None when absent."""
    node = data
    for part in _parts(path):
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        else:
            return None
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[path]`` for a dotted path that must already exist in ``data``.

    A new key is allowed only as the last part under a name -> value mapping
    (``initial_fractions``, ``ic50_fold``, ``extra_death_per_day``); list items are
    addressed by index (``phases.0``).
    """
    parts = _parts(path)
    node: Any = data
    walked: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(walked) or "the config"
        if isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                raise ConfigError(
                    f"sweep: {path}", f"{where} is a list of {len(node)}: use an index 0..{len(node) - 1}"
                )
        elif isinstance(node, dict):
            key = str(part)
            if key not in node:
                if last and walked and walked[-1] in FREE_MAPPINGS:
                    node[key] = value
                    return
                known = ", ".join(map(str, node)) or "none"
                raise ConfigError(f"sweep: {path}", f"no {key!r} under {where} (known: {known})")
            part = key
        else:
            raise ConfigError(f"sweep: {path}", f"{where} is a value, not a section")
        if last:
            node[part] = value
            return
        node = node[part]
        walked.append(str(part))


def latin_hypercube_unit(samples: int, dimensions: int, seed: int) -> np.ndarray:
    """A Latin hypercube in [0, 1)^d: each dimension's n values fall one in each of n strata.

    Column j is (pi_j(i) + U_ij) / n for a random permutation pi_j and uniforms U
    (McKay, Beckman & Conover 1979), from PCG64(seed).
    """
    rng = np.random.default_rng(seed)
    strata = np.stack([rng.permutation(samples) for _ in range(dimensions)], axis=1)
    return (strata + rng.random((samples, dimensions))) / samples


def _latin_hypercube(spec) -> list[dict[str, Any]]:
    paths = list(spec.ranges)
    unit = latin_hypercube_unit(spec.samples, len(paths), spec.seed)
    points = []
    for row in unit:
        point = {}
        for path, u in zip(paths, row, strict=True):
            r = spec.ranges[path]
            if r.scale == "log":
                if r.low <= 0 or r.high <= 0:
                    raise ConfigError(f"sweep.latin_hypercube.ranges.{path}",
                                      "a log range needs low and high > 0")
                point[path] = float(math.exp(math.log(r.low) + u * (math.log(r.high) - math.log(r.low))))
            else:
                point[path] = float(r.low + u * (r.high - r.low))
        points.append(point)
    return points


def sweep_overrides(config: Config) -> list[dict[str, Any]]:
    """The overrides of every point, in sweep order (the list, the grid, the hypercube)."""
    sweep = config.sweep
    if sweep is None:
        return [{}]
    points = [dict(p) for p in sweep.points]
    if sweep.grid:
        keys = list(sweep.grid)
        points += [dict(zip(keys, values, strict=True))
                   for values in itertools.product(*(sweep.grid[k] for k in keys))]
    if sweep.latin_hypercube is not None:
        for path, r in sweep.latin_hypercube.ranges.items():
            if not r.low < r.high:
                raise ConfigError(f"sweep.latin_hypercube.ranges.{path}",
                                  f"low {r.low:g} must be below high {r.high:g}")
        points += _latin_hypercube(sweep.latin_hypercube)
    if not points:
        raise ConfigError("sweep", "no points: give points, grid or latin_hypercube")
    return points


def expand_sweep(config: Config) -> list[SweepPoint]:
    """Every point of the config's sweep as a validated config (one point without a sweep).

    Raises ConfigError naming the point and the key on the first bad override, and
    on two points with the same overrides.
    """
    if config.sweep is None:
        return [SweepPoint(id="base", stream=0, overrides={}, config=config)]
    base = config.model_dump(mode="json", by_alias=True, exclude={"sweep"})
    seen: dict[str, int] = {}
    points = []
    for index, overrides in enumerate(sweep_overrides(config)):
        data = copy.deepcopy(base)
        for path, value in overrides.items():
            if path.split(".")[0] in ("sweep", "name", "seed", "replicates", "engine"):
                raise ConfigError(f"sweep: {path}", "this key cannot be swept")
            set_path(data, path, value)
        try:
            point_config = config_from_mapping(data)
        except ConfigError as error:
            raise ConfigError(f"sweep point {index + 1} ({_show(overrides)})", str(error)) from None
        identifier = point_id(overrides)
        if identifier in seen:
            raise ConfigError(
                "sweep", f"points {seen[identifier] + 1} and {index + 1} have the same overrides "
                f"({_show(overrides)})",
            )
        seen[identifier] = index
        points.append(SweepPoint(identifier, point_stream(identifier), overrides, point_config))
    return points


def _show(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "no overrides"


def short_labels(paths: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each path that tells it apart from the others."""
    labels = {}
    for path in paths:
        parts = path.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if sum(p == suffix or p.endswith("." + suffix) for p in paths) == 1:
                labels[path] = suffix
                break
        else:
            labels[path] = path
    return labels
