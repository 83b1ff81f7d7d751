from compiler.procs.thermometer.process import Thermometer

__all__ = ["Thermometer"]
