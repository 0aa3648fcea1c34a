"""The console and the files tell one story: lines in time order, one message per decision, and curves.png
drawn like the panel (the verdict's line, the epoch and the verdict in its title)."""
import json

import pytest

from nbdetect import cli

pytestmark = pytest.mark.slow


def test_a_cli_run_prints_each_epoch_before_its_verdict_once_and_draws_the_verdict(tmp_path, capsys, monkeypatch):
    import nbdetect.monitor.plots as plots

    drawn = {}
    real = plots.render_png

    def spy(source, **kwargs):
        drawn.update(kwargs)
        return real(source, **kwargs)

    monkeypatch.setattr(plots, "render_png", spy)
    out = tmp_path / "out"
    code = cli.main(["train", "--preset", "retinanet_tiny", "--weights", "none", "--epochs", "4", "--train-images", "8",
                     "--val-images", "4", "--threads", "1", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith("[")]
    epochs = [i for i, line in enumerate(lines) if "] epoch " in line]
    verdicts = [i for i, line in enumerate(lines) if "] verdict: " in line]
    assert len(epochs) == 4 and verdicts
    assert verdicts[0] > epochs[0]  # a verdict follows the epoch it judged
    said = [lines[i].split("verdict: ", 1)[1] for i in verdicts]
    assert all(a != b for a, b in zip(said, said[1:]))  # one message per decision: no repeats
    assert "kept" not in text or "fitted to the data where" in text  # no contradiction about the anchors
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verdict"] == said[-1]
    assert (out / "curves.png").stat().st_size > 1000
    assert drawn["caption"].startswith("curves through epoch 4/4") and metrics["verdict"][:40] in drawn["caption"]
    assert "threshold" in drawn and "decision_epoch" in drawn
