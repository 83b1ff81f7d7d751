"""SLAYER training of QB-LIF / CUBA networks (and a ReLU baseline), evaluation, export.

This module gathers the public names of the training package, split by concern:

- :mod:`.config`: :class:`TrainConfig` and its range checks;
- :mod:`.device`: device checks, lava-dl's CUDA JIT target, seeds, RNG states;
- :mod:`.loop`: the loop, schedule, checkpoints and resume (data-parallel under torchrun,
  :mod:`.distributed`);
- :mod:`.evaluate`: accuracy, spikes and SynOps (quantized forward);
- :mod:`.card`: export, the model card and the checks on the output path;
- :mod:`.curves`: the training-curves figure.

Time convention. ``timesteps`` T is the input window: every sample (integers of
:func:`qblif.core.encoding.quantize_intensity`) is presented unchanged on every step, and
the network is simulated for ``T + latency`` steps, ``latency`` being the number of
delaying blocks (Dense/Conv/Pool, one step each, as Lava's synapses). The output layer's
spike counts are summed over all simulated steps (the first ``latency`` steps are zero by
construction), so T counts the steps in which the output can respond. The exported file
stores ``/qblif/timesteps = T``: the steps each sample is presented on the chip; the
compiled graph's per-layer windows absorb the latency, so the Lava output over a sample's
T-step window is exactly this readout (``qblif.verify``).

Device: CPU (deterministic for a seed) or CUDA. The QB-LIF threshold is learnable (per
layer, or per channel with ``per_channel``). Validation and test accuracy are measured in
quantized mode (QB-LIF's exact integer forward; lava-dl CUBA is always 8-bit quantized).
"""
from __future__ import annotations

from qblif.core.fileio import atomic_write_text  # noqa: F401  (re-exported for the benches)
from qblif.training.card import card_markdown, card_paths, check_out, check_writable, export, output_paths, versions, write_card, write_outputs
from qblif.training.config import LR_SCHEDULES, ConfigError, TrainConfig, check_config
from qblif.training.device import CUBA_KERNELS, build_cuba_kernel, check_device, configure_device, kernel_module, seed_everything
from qblif.training.models import set_quantized  # noqa: F401
from qblif.training.evaluate import encode, evaluate, evaluate_file, logits_of, model_device, sim_steps, thresholds
from qblif.training.loop import TrainingStopped, clamp_thresholds, load_checkpoint, lr_at, make_model, plan_epochs, train
