"""Reading YAML configs: strict YAML (no duplicate keys, 1e9 is a number), strict schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from clonesim.config.errors import ConfigError
from clonesim.config.schema import Config
from clonesim.config.semantics import check_semantics


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars (``1e9`` is a float, ``no`` is text) and no duplicate keys."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# YAML 1.2 core schema for numbers and booleans: only true/false are booleans (not
# yes/no/on/off), integers are decimal (not 010 octal or 1:30 base 60).
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_REPLACED = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"}
_StrictLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10)
)


_MERGE_TAG = "tag:yaml.org,2002:merge"
#: The top-level key naming the config file that a config extends.
EXTENDS = "extends"


def _check_duplicate_keys(
    loader: yaml.SafeLoader, node: yaml.Node, path: str, seen: set[int]
) -> None:
    """Reject a key given twice in one mapping, naming its dotted path and line."""
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(loader, item, f"{path}[{index}]", seen)
    elif isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for key_node, value_node in node.value:
            # Only plain scalar keys: "<<" merges are resolved by SafeLoader, and an
            # unhashable key is reported by the constructor as invalid YAML.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                _check_duplicate_keys(loader, value_node, path, seen)
                continue
            key = loader.construct_object(key_node)
            name = f"{path}.{key}" if path else str(key)
            if key in keys:
                line = key_node.start_mark.line + 1
                raise ConfigError(name, f"duplicate key in YAML (line {line})")
            keys.add(key)
            _check_duplicate_keys(loader, value_node, name, seen)


def _get_single_data(self: _StrictLoader) -> Any:
    node = self.get_single_node()
    if node is None:
        return None
    _check_duplicate_keys(self, node, "", set())
    return self.construct_document(node)


_StrictLoader.get_single_data = _get_single_data  # type: ignore[method-assign]


def _format_location(location: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _split_location(location: tuple[Any, ...]) -> tuple[str, str]:
    """The error's key and the part of it to put before the problem.

    Inside a phase the key is ``schedules.NAME, phase N`` (N from 1), as in the
    cross-field checks, and the rest of the path leads the problem: ``drugs[0].dose``.
    """
    if (len(location) >= 4 and location[0] == "schedules" and location[2] == "phases"
            and isinstance(location[3], int) and not isinstance(location[3], bool)):
        return f"schedules.{location[1]}, phase {location[3] + 1}", _format_location(location[4:])
    return _format_location(location), ""


#: What a mapping of the contract looks like, instead of pydantic's
#: "valid dictionary or instance of <ModelClass>".
_EXPECTED_MAPPING = {
    "TriggerConfig": "a trigger must be progression or a valid dictionary with one key, "
                     "like {day: 70}",
    "PhaseConfig": "a phase must be a valid dictionary like {drugs: [...], until: ...}",
    "DoseConfig": "a drug entry must be a drug name or a valid dictionary like "
                  "{name: DRUG, dose: 1}",
    "ScheduleConfig": "a schedule must be a list of phases or a valid dictionary like "
                      "{phases: [...], repeat: true}",
    "TargetConfig": "a target must be a valid dictionary like {ic50: 0.1, hill: 1, "
                    "max_inhibition: 1}",
    "DrugConfig": "a drug must be a valid dictionary like {targets: {PATHWAY: {ic50: X}}} "
                  "or {extra_death_per_day: {PHENOTYPE: RATE}}",
}
_INSTANCE_OF = re.compile(r",? or (?:an )?instance of \w+")


def _message(first: Mapping[str, Any]) -> str:
    if first["type"] == "model_type":
        class_name = (first.get("ctx") or {}).get("class_name", "")
        if class_name in _EXPECTED_MAPPING:
            return _EXPECTED_MAPPING[class_name]
    return _INSTANCE_OF.sub("", str(first["msg"]).removeprefix("Value error, "))


def _first_error(error: ValidationError) -> ConfigError:
    """Turn pydantic's report into one line: ``key: problem (got value)``."""
    first = error.errors()[0]
    location = tuple(first["loc"])
    kind = first["type"]
    if kind == "invalid_key" or location[-1:] == ("[key]",):
        # A name (mapping key) that is not text, e.g. YAML's `1:` or `yes:`.
        parent = location[:-2] if location[-1:] == ("[key]",) else location[:-1]
        key, rest = _split_location((*parent, str(first["input"])))
        problem = f"a name must be text, got {first['input']!r} (quote it in YAML)"
    else:
        key, rest = _split_location(location)
        if kind == "extra_forbidden":
            problem = "unknown key (check the spelling against the config contract)"
        elif kind == "missing":
            problem = "required key is missing"
        else:
            problem = _message(first)
            if "(got " not in problem:
                value = first.get("input")
                shown = repr(value) if not isinstance(value, Mapping) else "a mapping"
                problem = f"{problem} (got {shown})"
    return ConfigError(key, f"{rest}: {problem}" if rest else problem)


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """Validate a plain mapping (as parsed from YAML) into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            "", f"a config must be a mapping of keys to values, got {type(data).__name__}"
        )
    if EXTENDS in data:
        raise ConfigError(EXTENDS, "only a config file can extend another; load it with "
                                   "load_config(PATH), or give the whole config")
    try:
        config = Config.model_validate(dict(data))
    except ValidationError as error:
        raise _first_error(error) from None
    return check_semantics(config)


def _read_mapping(path: Path) -> dict[str, Any]:
    """A YAML config file's top-level mapping, unvalidated."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            "", f"cannot read config {path}: not UTF-8 text (byte {error.start})"
        ) from None
    except OSError as error:
        raise ConfigError("", f"cannot read config {path}: {error.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError("", f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError("", f"{path}: the config is empty")
    if not isinstance(data, Mapping):
        raise ConfigError(
            "", f"{path}: a config must be a mapping of keys to values, got {type(data).__name__}"
        )
    return dict(data)


def _resolved_mapping(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping with ``extends: OTHER.yaml`` resolved: OTHER's mapping (itself
    resolved; the path is relative to this file's folder) with every top-level key this
    file gives replacing OTHER's whole section. Sections are replaced, never merged, so
    what a section holds is always what one file says."""
    data = _read_mapping(path)
    if EXTENDS not in data:
        return data
    base = data.pop(EXTENDS)
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(EXTENDS, f"must be the path of a config file (got {base!r}) in {path}")
    base_path = (path.parent / base).resolve()
    here = path.resolve()
    if base_path in (*chain, here):
        cycle = " -> ".join(p.name for p in (*chain, here, base_path))
        raise ConfigError(EXTENDS, f"configs extend each other in a cycle: {cycle}")
    if not base_path.is_file():
        raise ConfigError(EXTENDS, f"{base!r} in {path}: no such config file ({base_path})")
    return {**_resolved_mapping(base_path, (*chain, here)), **data}


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file (``extends: OTHER.yaml`` resolved)."""
    return config_from_mapping(_resolved_mapping(Path(path)))


def as_config(config_or_path: Config | Mapping[str, Any] | str | Path) -> Config:
    """Accept a validated Config, a mapping or a path to a YAML file."""
    if isinstance(config_or_path, Config):
        return config_or_path
    if isinstance(config_or_path, Mapping):
        return config_from_mapping(config_or_path)
    return load_config(config_or_path)
