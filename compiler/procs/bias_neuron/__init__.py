from compiler.procs.bias_neuron.process import BiasNeuron

__all__ = ["BiasNeuron"]
