from qblif.lava.procs.bias_neuron.process import BiasNeuron

__all__ = ["BiasNeuron"]
