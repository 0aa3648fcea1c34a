"""Atomic writes (checkpoints, notebooks): a failed write leaves the old file whole and no temp file."""
import pytest

from nbdetect.atomic import atomic_write
from nbdetect.checkpoint import load_checkpoint, save_checkpoint


def test_a_failing_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "notes.txt"
    atomic_write(path, lambda fh: fh.write("first"), mode="w")

    def half_then_crash(fh):
        fh.write("sec")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        atomic_write(path, half_then_crash, mode="w")
    assert path.read_text() == "first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.txt"]


def test_checkpoint_interrupted_by_ctrl_c_keeps_the_last_good_one(tmp_path, monkeypatch):
    path = save_checkpoint({"step": 1}, tmp_path / "last.pt")

    def interrupted(obj, fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr("nbdetect.checkpoint.torch.save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_path_that_cannot_be_written_is_named_not_its_temp_file(tmp_path):
    from nbdetect.errors import WriteError

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "notebook.ipynb"  # its folder is a file
    with pytest.raises(WriteError) as info:
        atomic_write(target, lambda fh: fh.write(b"{}"))
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert isinstance(info.value, OSError) and blocker.read_text() == "x"
