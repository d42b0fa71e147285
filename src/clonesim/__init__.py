"""clonesim: a stochastic, clone-resolved simulator of tumour evolution under targeted therapy."""

__version__ = "0.1.0"

from clonesim.api import SimulationResult, run_to_directory, simulate  # noqa: E402
from clonesim.config import Config, ConfigError, load_config  # noqa: E402
from clonesim.io.run_dir import read_table  # noqa: E402
from clonesim.model import compile_model  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "SimulationResult",
    "__version__",
    "compile_model",
    "load_config",
    "read_table",
    "run_to_directory",
    "simulate",
]
