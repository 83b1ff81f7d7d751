"""``qblif train``: registered by :mod:`qblif_lava.cli` (placeholder until the training issue lands)."""


def register(sub):
    p = sub.add_parser("train", help="train a QB-LIF or CUBA network with SLAYER and export NetX HDF5")
    p.set_defaults(func=lambda args: print("qblif train: not implemented yet") or 1)
