"""Training QB-LIF / CUBA networks with lava-dl SLAYER.

The package itself imports nothing: ``qblif train --help`` (:mod:`qblif.cli.train`)
and the config checks load without torch or lava-dl. The modules that need them
(``models``, ``loop``, ``evaluate``, ``card``, ``train``, ...) import torch, and lava-dl
through :mod:`qblif.training.lavadl` (which silences its import-time prints) before anything
else of lava-dl.
"""
