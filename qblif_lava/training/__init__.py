"""Training QB-LIF / CUBA networks with lava-dl SLAYER (imports torch)."""
