from qblif.lava.procs.thermometer.process import Thermometer

__all__ = ["Thermometer"]
