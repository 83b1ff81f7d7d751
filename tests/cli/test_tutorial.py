"""docs/tutorial.ipynb executes without error (train -> export -> compile -> Lava -> plots ->
compare), in a kernel running this interpreter with this checkout first on the path."""
import json
import os
import sys
from importlib.util import find_spec

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NOTEBOOK = os.path.join(ROOT, "docs", "tutorial.ipynb")
TIMEOUT_S = 600     # the whole notebook takes about a minute on a 2-core CPU


def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    missing = [m for m in ("nbformat", "nbclient", "ipykernel") if find_spec(m) is None]
    if missing:
        pytest.skip(f"notebook packages missing: {', '.join(missing)} "
                    f"(pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    # a kernelspec of this interpreter, found first (not whatever 'python3' the machine has)
    spec = tmp_path / "jupyter" / "kernels" / "qblif-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "qblif test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, QBLIF_TUTORIAL_DIR=str(tmp_path / "work"), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]))
    client = NotebookClient(nb, kernel_name="qblif-test", timeout=TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5                          # raster, histogram, activity, run, compare
    assert os.path.getsize(tmp_path / "work" / "run.png") > 10_000
