"""``qblif compile`` and ``qblif run`` (placeholders until the compiler issue lands)."""


def register(sub):
    for name in ("compile", "run"):
        p = sub.add_parser(name, help=f"{name} a NetX HDF5 model (not implemented yet)")
        p.set_defaults(func=lambda args: print("not implemented yet") or 1)
