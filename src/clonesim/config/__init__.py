"""Config schema, loading and validation."""

from clonesim.config.errors import ClonesimError, ConfigError
from clonesim.config.load import as_config, config_from_mapping, load_config
from clonesim.config.schema import Config

__all__ = [
    "ClonesimError",
    "Config",
    "ConfigError",
    "as_config",
    "config_from_mapping",
    "load_config",
]
