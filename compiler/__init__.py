"""NetX HDF5 -> graph IR -> Lava process graph compiler for QB-LIF networks."""
