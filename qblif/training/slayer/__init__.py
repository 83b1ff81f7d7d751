"""QB-LIF for lava-dl SLAYER (imports torch; never imported by ``qblif`` itself).

* :class:`Neuron`, :func:`set_quantized` (``qblif.training.slayer.neuron``)
* the ReLSG-ET surrogate (``qblif.training.slayer.surrogate``)
* blocks ``Input``, ``Dense``, ``Conv``, ``Pool``, ``Flatten``, ``Average``, ``Recurrent``
  (``qblif.training.slayer.block``); learnable axonal delays ``Delay`` (``qblif.training.slayer.delay``)
* :func:`export_network`, :func:`load_network` (``qblif.training.slayer.hdf5``)
"""
import qblif.training.lavadl  # noqa: F401  (first: silences lava-dl's import-time prints)
from qblif.training.slayer import block
from qblif.training.slayer.hdf5 import Network, export_network, load_network
from qblif.training.slayer.neuron import Neuron, set_quantized
from qblif.training.slayer.surrogate import ReLSGET, relsg_et, relsg_et_derivative

__all__ = ['Neuron', 'set_quantized', 'block', 'export_network', 'load_network', 'Network',
           'ReLSGET', 'relsg_et', 'relsg_et_derivative']
