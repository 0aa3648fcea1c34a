import json

from nbdetect.history import History
from nbdetect.history_files import HistoryWriter


def test_history_memory_stays_bounded_on_long_runs():
    h = History(max_points=1000)
    for step in range(1, 100_001):
        h.log_iteration(step=step, epoch=1 + step // 1000, lr=1e-3, loss=10.0 / step**0.5)
    assert h.iterations_logged == 100_000
    assert len(h.iterations) <= 1000
    # decimation keeps the curve's shape: early points high, late points low, steps increasing
    steps = [r["step"] for r in h.iterations]
    assert steps == sorted(steps) and steps[-1] > 99_000
    assert h.latest["step"] == 100_000
    # every kept record stands for the same number of iterations
    assert steps[1] - steps[0] == steps[-1] - steps[-2] == h.stride
    assert h.iterations[0]["loss"] > 1.0 > h.iterations[-1]["loss"]


def _logged(history, writer, kind, **rec):
    rec = history.log_iteration(**rec) if kind == "iter" else history.log_epoch(**rec)
    writer.iteration(rec) if kind == "iter" else writer.epoch(rec, history.epochs)


def test_history_files_and_resume_markers(tmp_path):
    h, w = History(), HistoryWriter(tmp_path)
    for s in range(1, 7):
        _logged(h, w, "iter", step=s, epoch=1, lr=0.1, loss=float(s))
    _logged(h, w, "epoch", epoch=1, step=6, train_loss=3.5, val_loss=3.0)
    w.close()
    # a crashed run logged steps 7-8, then a resume from step 6 rewrites them
    h2, w2 = History(), HistoryWriter(tmp_path)
    _logged(h2, w2, "iter", step=7, epoch=2, lr=0.1, loss=70.0)
    _logged(h2, w2, "iter", step=8, epoch=2, lr=0.1, loss=80.0)
    w2.close()
    h3, w3 = History(), HistoryWriter(tmp_path, resume_step=6)
    _logged(h3, w3, "iter", step=7, epoch=2, lr=0.1, loss=7.0)
    w3.close()
    loaded = History.load(tmp_path)
    assert [r["loss"] for r in loaded.iterations] == [1, 2, 3, 4, 5, 6, 7.0]
    assert loaded.epoch_values("val_loss") == [3.0]
    assert (tmp_path / "epochs.csv").read_text().splitlines()[0].startswith("epoch,train_loss,val_loss")
    assert all(json.loads(line)["type"] in {"iter", "epoch", "resume"}
               for line in (tmp_path / "history.jsonl").read_text().splitlines())


def test_per_batch_turns_summed_losses_into_per_batch_means():
    import pytest

    from nbdetect import per_batch
    from nbdetect.errors import InputError

    assert per_batch([300.0, 150.0], list(range(150))) == [2.0, 1.0]
    assert per_batch([9.0], 3) == [3.0]
    with pytest.raises(InputError, match="number of batches") as info:
        per_batch([1.0], object())
    assert "DataLoader" in info.value.fix
