"""One size check before any read of an HDF5 file (NetX and NIR readers, issue 21).

:func:`check_hdf5` walks every group, dataset and attribute of a file and looks only at the
declared shapes and dtypes (HDF5 metadata: no dataset is read, nothing is decompressed), so
a 37 KB file whose gzip-compressed weight declares 3 x 250,000,000 float64 is refused before
``nir.read`` or any ``[()]`` allocates 6 GB. Refused, as one line naming the HDF5 path (for
NIR the node and key, for NetX the layer and key) and the size:

- a dataset or attribute of more than ``MAX_ELEMENTS`` elements, or all datasets together
  more than ``MAX_FILE_ELEMENTS``;
- more than ``MAX_HDF5_OBJECTS`` objects, or groups nested deeper than ``MAX_HDF5_DEPTH``
  (a hard link back to a parent group makes a cycle: refused by the same limit);
- an external link (it would make the reader open another file).

h5py is imported on use; no torch, no Lava.
"""
from __future__ import annotations

import re

from qblif.core.constants import MAX_ELEMENTS, MAX_FILE_ELEMENTS, MAX_HDF5_DEPTH, MAX_HDF5_OBJECTS
from qblif.core.errors import ModelFileError


def where(path: str) -> str:
    """A readable name of the HDF5 object ``path``: ``NIR node 'a.b' key 'weight'`` for
    NIR's ``/node/nodes/a/nodes/b/weight``, ``layer 2 key 'weight'`` for NetX's
    ``/layer/2/weight``, else ``key '/path'``."""
    nir = re.fullmatch(r"/?node((?:/nodes/[^/]+)+)(?:/(.+))?", path)
    if nir:
        node = ".".join(nir.group(1).split("/nodes/")[1:])
        return f"NIR node {node!r}" + (f" key {nir.group(2)!r}" if nir.group(2) else "")
    netx = re.fullmatch(r"/?layer/(\d+)(?:/(.+))?", path)
    if netx:
        return f"layer {netx.group(1)}" + (f" key {netx.group(2)!r}" if netx.group(2) else "")
    return f"key {path!r}"


def _size(shape) -> int:
    n = 1
    for s in shape or ():
        n *= int(s)
    return n


def _describe(shape, dtype) -> str:
    dims = " x ".join(f"{int(s):,}" for s in shape) if shape else "scalar"
    return f"{dims} {dtype}"


class _Walk:
    """The running totals of one :func:`check_hdf5` walk."""

    def __init__(self, file: str, error: type):
        self.file, self.error = file, error
        self.objects = 0
        self.elements = 0

    def refuse(self, path: str, why: str) -> ModelFileError:
        return self.error(f"{self.file}: {where(path)}: {why}")

    def count(self, path: str) -> None:
        self.objects += 1
        if self.objects > MAX_HDF5_OBJECTS:
            raise self.refuse(path, f"more than {MAX_HDF5_OBJECTS:,} HDF5 objects")

    def sized(self, path: str, shape, dtype, what: str) -> int:
        n = _size(shape)
        if n > MAX_ELEMENTS:
            raise self.refuse(path, f"{what} declared as {_describe(shape, dtype)} "
                              f"({n:,} elements) is too large (limit {MAX_ELEMENTS:,} elements)")
        return n

    def attributes(self, obj, path: str) -> None:
        import h5py
        for name in obj.attrs:
            self.count(f"{path}@{name}")
            aid = h5py.h5a.open(obj.id, name.encode() if isinstance(name, str) else name)
            self.sized(f"{path}@{name}", aid.shape, aid.dtype, "attribute")

    def group(self, grp, path: str, depth: int) -> None:
        import h5py
        if depth > MAX_HDF5_DEPTH:
            raise self.refuse(path, f"groups nested more than {MAX_HDF5_DEPTH} deep")
        self.attributes(grp, path)
        for name in grp:
            sub = f"{path.rstrip('/')}/{name}"
            self.count(sub)
            if isinstance(grp.get(name, getlink=True), h5py.ExternalLink):
                raise self.refuse(sub, "an external link to another file")
            obj = grp[name]
            if isinstance(obj, h5py.Group):
                self.group(obj, sub, depth + 1)
            else:
                self.elements += self.sized(sub, obj.shape, obj.dtype, "dataset")
                if self.elements > MAX_FILE_ELEMENTS:
                    raise self.refuse(sub, f"the datasets hold more than "
                                      f"{MAX_FILE_ELEMENTS:,} elements together")
                self.attributes(obj, sub)


def check_hdf5(path: str, error: type = ModelFileError, kind: str = "HDF5") -> None:
    """Refuse the HDF5 file ``path`` (raise ``error``, a :class:`ModelFileError` class, one
    line) if any declared size is past the limits above; reads metadata only. A file that is
    not HDF5 at all (``not a readable <kind> file``), or is damaged, is one line too."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: not a readable {kind} file ({type(exc).__name__})") from None
    walk = _Walk(str(path), error)
    try:
        with f:
            walk.group(f, "/", 0)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:   # damaged metadata
        raise error(f"{path}: damaged HDF5 file ({type(exc).__name__}: "
                    f"{' '.join(str(exc).split())[:120]})") from None
