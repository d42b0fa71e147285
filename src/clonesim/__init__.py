"""clonesim: a stochastic, clone-resolved simulator of tumour evolution under targeted therapy."""

__version__ = "0.1.0"

from clonesim.api import SimulationResult, run_to_directory, simulate  # noqa: E402
from clonesim.config import Config, ConfigError, load_config  # noqa: E402
from clonesim.io.run_dir import read_table  # noqa: E402
from clonesim.model import compile_model  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "Report",
    "SimulationResult",
    "__version__",
    "compile_model",
    "load_config",
    "read_table",
    "report",
    "run_to_directory",
    "simulate",
]


def __getattr__(name: str):
    # report pulls in lifelines, scipy and matplotlib (about a second): loaded on first use only.
    if name in ("report", "Report"):
        from clonesim.analysis import report as module

        return getattr(module, name)
    raise AttributeError(f"module 'clonesim' has no attribute {name!r}")
