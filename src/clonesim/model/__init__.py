"""The model layer: a validated config compiled into flat tables for the kernels."""

from clonesim.model.compiled import CompiledModel, KernelModel, compile_model

__all__ = ["CompiledModel", "KernelModel", "compile_model"]
