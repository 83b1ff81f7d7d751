"""The main job (``qblif demo``) runs end to end and reports an exact spike match."""
import pytest

pytest.importorskip("torch")


def test_demo_trains_compiles_runs_and_matches(tmp_path, capsys):
    from qblif.cli.main import main
    out = tmp_path / "demo.net"
    rc = main(["demo", "--out", str(out), "--epochs", "2", "--samples", "40", "--binary-samples", "5"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert out.exists() and (tmp_path / "demo.json").exists()
    assert "every spike matched   YES" in text
    assert "binary lanes          identical to graded on 5 samples" in text
    slayer = [l for l in text.splitlines() if l.startswith("SLAYER accuracy")][0].split()[2]
    lava = [l for l in text.splitlines() if l.startswith("Lava accuracy")][0].split()[2]
    assert slayer == lava and float(slayer.rstrip("%")) > 50
