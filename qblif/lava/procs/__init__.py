"""Small Lava processes of the compiler, one package each (Lava's model discovery
imports every module next to a process). No torch here."""
