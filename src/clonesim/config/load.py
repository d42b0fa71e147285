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


def _first_error(error: ValidationError) -> ConfigError:
    """Turn pydantic's report into one line: ``key: problem (got value)``."""
    first = error.errors()[0]
    location = tuple(first["loc"])
    kind = first["type"]
    if kind == "invalid_key" or location[-1:] == ("[key]",):
        # A name (mapping key) that is not text, e.g. YAML's `1:` or `yes:`.
        parent = _format_location(location[:-2] if location[-1:] == ("[key]",) else location[:-1])
        name = str(first["input"])
        return ConfigError(
            f"{parent}.{name}" if parent else name,
            f"a name must be text, got {first['input']!r} (quote it in YAML)",
        )
    key = _format_location(location)
    if kind == "extra_forbidden":
        return ConfigError(key, "unknown key (check the spelling against the config contract)")
    if kind == "missing":
        return ConfigError(key, "required key is missing")
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    shown = repr(value) if not isinstance(value, Mapping) else "a mapping"
    return ConfigError(key, f"{message} (got {shown})")


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """Validate a plain mapping (as parsed from YAML) into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            "", f"a config must be a mapping of keys to values, got {type(data).__name__}"
        )
    try:
        config = Config.model_validate(dict(data))
    except ValidationError as error:
        raise _first_error(error) from None
    return check_semantics(config)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
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
    return config_from_mapping(data)


def as_config(config_or_path: Config | Mapping[str, Any] | str | Path) -> Config:
    """Accept a validated Config, a mapping or a path to a YAML file."""
    if isinstance(config_or_path, Config):
        return config_or_path
    if isinstance(config_or_path, Mapping):
        return config_from_mapping(config_or_path)
    return load_config(config_or_path)
