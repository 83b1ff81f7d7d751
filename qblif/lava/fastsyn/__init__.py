"""Bit-exact fast CPU models for Lava's ``Dense`` and ``Conv`` (``fixed_pt``).

Select them per run with ``Loihi2SimCfg(select_tag="fixed_pt",
exception_proc_model_map=fast_models())``; the processes (ours or stock NetX's) are
unchanged. See docs/fast_execution.md.
"""
from qblif.lava.fastsyn.models import FastConvModel, FastDenseModel, fast_models

__all__ = ["FastConvModel", "FastDenseModel", "fast_models"]
