"""Malformed, inconsistent or unsupported files raise CompileError only (never another
exception, never a hang); the CLI prints one line and exits 2; no OS process leaks."""
from __future__ import annotations


import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import qblif
from lava_harness import child_pids, settled
from qblif import CompileError
from qblif.core.errors import QblifError
from test_compiler_writer import conv_net, dense_net, write_net


def _valid(tmp_path, name="v.net", conv=False):
    rng = np.random.default_rng(3)
    specs, shape = conv_net(rng, k=2) if conv else dense_net(rng, (6, 5, 4), k=4)
    return write_net(tmp_path / name, specs, shape)


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def _replace(key, value):
    def fn(f):
        del f[key]
        f.create_dataset(key, data=value)
    return fn


def _delete(key):
    def fn(f):
        del f[key]
    return fn


def test_compile_error_type():
    assert issubclass(CompileError, QblifError) and CompileError.exit_code == 2
    assert str(CompileError("bad", 3, "neuron/vThMant")) == "layer 3 key 'neuron/vThMant': bad"


CASES = [  # (edit, layer, key fragment)
    (_delete("layer/1/neuron/vThMant"), 1, "neuron/vThMant"),
    (_delete("layer/2/weight"), 2, "weight"),
    (_delete("layer/1/type"), 1, "type"),
    (_replace("layer/1/type", np.bytes_("convT")), 1, "type"),
    (_replace("layer/1/type", np.bytes_("average")), 1, "type"),
    (_replace("layer/1/neuron/type", np.bytes_("SDNN")), 1, "neuron/type"),
    (_replace("layer/1/neuron/type", np.bytes_("WEIRD")), 1, "neuron/type"),
    (_replace("layer/1/neuron/vThMant", 0), 1, "neuron/vThMant"),
    (_replace("layer/1/neuron/vThMant", 2 ** 17), 1, "neuron/vThMant"),
    (_replace("layer/1/neuron/vThMant", np.array([5, 6, 7])), 1, "neuron/vThMant"),
    (_replace("layer/1/neuron/vThMant", 10.5), 1, "neuron/vThMant"),
    (_replace("layer/1/neuron/vThMant", np.nan), 1, "neuron/vThMant"),
    (_replace("layer/1/neuron/vThMant", np.bytes_("ten")), 1, "neuron/vThMant"),
    (_replace("layer/1/neuron/iDecay", 0), 1, "neuron/iDecay"),
    (_replace("layer/1/neuron/vDecay", 4096), 1, "neuron/vDecay"),
    (_replace("layer/1/neuron/maxBurst", 256), 1, "neuron/maxBurst"),
    (_replace("layer/1/neuron/maxBurst", 0), 1, "neuron/maxBurst"),
    (_replace("layer/1/neuron/messageBits", 2), 1, "neuron/messageBits"),
    (_replace("layer/1/neuron/resetMode", np.bytes_("halve")), 1, "neuron/resetMode"),
    (_replace("layer/1/neuron/refDelay", 3), 1, "neuron/refDelay"),
    (_replace("layer/1/weight", np.full((5, 6), 300.0)), 1, "weight"),
    (_replace("layer/1/weight", np.full((5, 6), 201.0) * np.array([1, -1, 1, 1, 1, 1])), 1, "weight"),
    (_replace("layer/1/weight", np.full((5, 6), 2.5)), 1, "weight"),
    (_replace("layer/1/weight", np.zeros((5, 7))), 1, "weight"),
    (_replace("layer/1/shape", np.array([4])), None, None),
    (_replace("layer/1/shape", np.array([0])), 1, "shape"),
    (_replace("layer/1/bias", np.full(5, 5000)), 1, "bias"),
    (_replace("layer/1/delay", np.full(5, 99.0)), 1, "delay"),   # (delays <= 62 are supported)
    (_replace("qblif/inputBits", 9), None, "inputBits"),
    (_delete("layer/0"), None, "layer"),
]


@pytest.mark.parametrize("edit,layer,key", CASES)
def test_malformed_dense_raises_compile_error(tmp_path, edit, layer, key):
    path = _valid(tmp_path)
    try:
        _edit(path, edit)
    except KeyError:          # the key to replace is absent: create it
        with h5py.File(path, "r+") as f:
            cell = dict(zip(edit.__code__.co_freevars, (c.cell_contents for c in edit.__closure__)))
            f.create_dataset(cell["key"], data=cell["value"])
    with pytest.raises(CompileError) as exc:
        qblif.compile(path)
    msg = str(exc.value)
    assert "\n" not in msg
    if layer is not None:
        assert f"layer {layer}" in msg, msg
    if key is not None:
        assert key in msg, msg


@pytest.mark.parametrize("edit,key", [
    (_replace("layer/1/groups", 2), "groups"),
    (_replace("layer/1/kernelSize", np.array([9, 9])), "kernelSize|weight"),
    (_replace("layer/1/weight", np.zeros((3, 2, 3))), "weight"),
    (_replace("layer/2/stride", np.array([0, 0])), "stride"),
    (_replace("layer/3/shape", np.array([99, 1, 1])), "shape"),
    (_delete("layer/3"), "layer"),
])
def test_malformed_conv_raises_compile_error(tmp_path, edit, key):
    path = _edit(_valid(tmp_path, conv=True), edit)
    with pytest.raises(CompileError, match=key):
        qblif.compile(path)


def test_huge_declared_dataset_is_refused_without_reading(tmp_path):
    """A hostile file declaring a 2^27-element weight (stored lazily, a few KiB on disk)."""
    def huge(f):
        del f["layer/1/weight"]
        f.create_dataset("layer/1/weight", shape=(2 ** 14, 2 ** 13), dtype="f4")
    path = _edit(_valid(tmp_path), huge)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(CompileError, match=r"layer 1 key 'weight': .*too large"):
        qblif.compile(path)


def test_truncated_and_garbage_files(tmp_path):
    path = _valid(tmp_path)
    data = path.read_bytes()
    for n in (0, 8, 100, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"t{n}.net"
        bad.write_bytes(data[:n])
        with pytest.raises(CompileError):
            qblif.compile(bad)
    with pytest.raises(CompileError, match="no such file"):
        qblif.compile(tmp_path / "missing.net")
    with pytest.raises(CompileError, match="encoding"):
        qblif.compile(path, encoding="ternary")


# --- property-based: random mutations of valid files --------------------------------
_KEYS = ["layer/1/neuron/vThMant", "layer/1/neuron/iDecay", "layer/1/neuron/vDecay",
         "layer/1/neuron/maxBurst", "layer/1/neuron/resetMode", "layer/1/weight",
         "layer/1/shape", "layer/2/weight", "layer/2/neuron/type", "layer/0/shape",
         "layer/2/type", "qblif/inputBits", "qblif/inputShape", "layer/1/neuron/messageBits"]
_VALUES = st.one_of(
    st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=12), st.text(max_size=8).map(lambda s: s.encode("utf-8", "ignore")),
    st.lists(st.integers(-300, 300), min_size=0, max_size=40).map(np.array),
    st.lists(st.floats(-300, 300, allow_nan=False), min_size=1, max_size=40).map(np.array),
)


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(_KEYS), value=_VALUES, delete=st.booleans())
def test_mutated_files_raise_only_compile_error(tmp_path, key, value, delete):
    path = tmp_path / "h.net"
    if not path.exists():
        _valid(tmp_path, "h.net")
    work = tmp_path / "w.net"
    work.write_bytes(path.read_bytes())
    with h5py.File(work, "r+") as f:
        del f[key]
        if not delete:
            try:
                f.create_dataset(key, data=value)
            except (TypeError, ValueError):
                return        # h5py cannot store it: nothing to test
    try:
        net = qblif.compile(work)
    except CompileError as exc:
        assert "\n" not in str(exc)
        return
    assert net.ir.graph["input_shape"]    # compiled: the mutation was harmless


# --- CLI -----------------------------------------------------------------------------
def _cli(argv, monkeypatch):
    import qblif.cli.main as cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("qblif.cli.compile",))
    return cli.main(argv)


def test_cli_compile_report_and_error(tmp_path, monkeypatch, capsys):
    path = _valid(tmp_path, conv=True)
    png, gml = tmp_path / "g.png", tmp_path / "g.graphml"
    assert _cli(["compile", str(path), "--encoding", "binary", "--graph", str(png),
                 "--graphml", str(gml)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "pool/QBLIF K=2" in out and "neurocore" in out
    assert png.stat().st_size > 1000
    import networkx as nx
    g = nx.read_graphml(gml)
    assert g.number_of_nodes() == 5 and g.nodes["1"]["kind"] == "conv"
    _edit(path, _replace("layer/1/neuron/maxBurst", 999))
    assert _cli(["compile", str(path)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer 1" in err and "maxBurst" in err


# --- no leaked processes ---------------------------------------------------------------
def _settled(before):
    return settled(before, set())[0]          # leftover child processes


def test_no_leaked_processes_after_success_and_failure(tmp_path, monkeypatch):
    path = _valid(tmp_path)
    before = child_pids()
    with qblif.compile(path) as net:
        net.run(np.ones((2, 6), int), 3)
        assert not _settled(before)
        with pytest.raises(ValueError, match="frames"):
            net.run(np.full((2, 6), 99), 3)          # out of the 4-bit input range
        from qblif.lava import runner as runtime_mod

        class Boom(RuntimeError):
            pass

        def failing_read(*a, **k):
            raise Boom("reading the recording failed")
        monkeypatch.setattr(runtime_mod, "read_recording", failing_read)
        with pytest.raises(Boom):
            net.run(np.ones((1, 6), int), 2)
        monkeypatch.undo()
    assert not _settled(before)
