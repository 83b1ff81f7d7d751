"""QB-LIF for lava-dl SLAYER (imports torch; never imported by ``qblif_lava`` itself).

* :class:`Neuron`, :func:`set_quantized` (``qblif_lava.slayer.neuron``)
* the ReLSG-ET surrogate (``qblif_lava.slayer.surrogate``)
* blocks ``Input``, ``Dense``, ``Conv``, ``Pool``, ``Flatten``, ``Average``, ``Recurrent``
  (``qblif_lava.slayer.block``); learnable axonal delays ``Delay`` (``qblif_lava.slayer.delay``)
* :func:`export_network`, :func:`load_network` (``qblif_lava.slayer.hdf5``)
"""
import qblif_lava.lavadl  # noqa: F401  (first: silences lava-dl's import-time prints)
from qblif_lava.slayer import block
from qblif_lava.slayer.hdf5 import Network, export_network, load_network
from qblif_lava.slayer.neuron import Neuron, set_quantized
from qblif_lava.slayer.surrogate import ReLSGET, relsg_et, relsg_et_derivative

__all__ = ['Neuron', 'set_quantized', 'block', 'export_network', 'load_network', 'Network',
           'ReLSGET', 'relsg_et', 'relsg_et_derivative']
