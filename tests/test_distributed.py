"""devices=2 on the CPU (gloo): the same training as one process, Stop, a failing rank, resume 2 <-> 1, no orphans.

The test process is rank 0 (as a notebook kernel is) and forks rank 1 when the run starts. BatchNorm is frozen in
the model compared across process counts: a BatchNorm in training mode normalises each process's share of the
batch on its own (SyncBatchNorm exists for GPUs), which is the one expected difference.
"""
import os

import pytest
import torch
from torch.utils.data import Dataset
from torchvision.ops.misc import FrozenBatchNorm2d

from test_trainer import StopAt
from toy_data import toy_samples
from nbdetect.checkpoint import load_checkpoint
from nbdetect.data.loader import ShardedSampler, ResumableSampler, make_loader
from nbdetect.errors import DistributedError, InputError
from nbdetect.models import build_model
from nbdetect.recipes import ALTERNATIVE_1
from nbdetect.trainer import TrainingRun

pytestmark = [pytest.mark.skipif(not torch.distributed.is_available() or os.name != "posix",
                                 reason="needs torch.distributed and fork"),
              pytest.mark.slow]  # every test here starts processes


def frozen_bn(model):
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.BatchNorm2d):
                f = FrozenBatchNorm2d(child.num_features)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(f, key).copy_(getattr(child, key).detach())
                setattr(module, name, f)
    return model


def make_run(out_dir, devices, epochs=2, data=None, callbacks=(), seed=0, num_workers=0):
    torch.manual_seed(seed)
    model = frozen_bn(build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96))
    loader = make_loader(data if data is not None else toy_samples(8), batch_size=4, shuffle=True, seed=0,
                         num_workers=num_workers)
    val = make_loader(toy_samples(5, seed=1), batch_size=2, shuffle=False)
    recipe = ALTERNATIVE_1.replace(preset="retinanet_tiny", epochs=epochs, warmup_epochs=0.5)
    return TrainingRun(model, loader, val, recipe=recipe, out_dir=out_dir, eval_map_every=0, tensorboard=False,
                       devices=devices, threads=1, callbacks=callbacks)


def no_orphans(run):
    workers = run.group.workers if run.group is not None else []
    assert workers and all(not p.is_alive() for p in workers)
    return [p.exitcode for p in workers]


def same_weights(a, b, atol=2e-6):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        if x.is_floating_point():
            assert torch.allclose(x, y, atol=atol), name


def test_each_rank_takes_its_share_of_every_global_batch_and_the_same_number_of_steps():
    for n, batch, world in [(10, 4, 2), (8, 4, 2), (7, 6, 3), (3, 4, 4), (12, 4, 1)]:
        base = ResumableSampler(n, seed=3)
        shares = [list(ShardedSampler(base, batch, r, world)) for r in range(world)]
        steps = -(-n // batch)
        assert all(len(s) == steps * (batch // world) for s in shares)
        for step in range(steps):  # global batch = the ranks' shares side by side, the epoch's order padded
            got = sum((s[step * (batch // world):(step + 1) * (batch // world)] for s in shares), [])
            order = base.order()
            assert got == (order * 4)[step * batch:(step + 1) * batch]
        resumed = ShardedSampler(base, batch, world - 1, world)
        resumed.set_start(batch // world)  # one step of this rank's samples done
        assert list(resumed) == shares[-1][batch // world:]


@pytest.mark.slow
def test_two_processes_train_exactly_as_one_on_the_same_global_batch(tmp_path, capsys):
    one = make_run(tmp_path / "one", 1).run()
    two = make_run(tmp_path / "two", 2).run()
    assert "2 processes (gloo); batch 4 per step = 2 per process, 2 steps per epoch" in capsys.readouterr().out
    assert two.status == "finished" and no_orphans(two) == [0]
    assert [r["loss"] for r in two.history.iterations] == pytest.approx([r["loss"] for r in one.history.iterations],
                                                                        rel=1e-5)
    assert [r["lr"] for r in two.history.iterations] == pytest.approx([r["lr"] for r in one.history.iterations])
    # the validation loss is over all 5 images (rank 0 has 3, rank 1 has 2), not rank 0's part
    assert [e["val_loss"] for e in two.history.epochs] == pytest.approx([e["val_loss"] for e in one.history.epochs],
                                                                        rel=1e-5)
    assert two.images_seen == one.images_seen == 16 and two.steps_per_epoch == one.steps_per_epoch == 2
    seconds = [e["time_s"] for e in two.history.epochs]  # images/s of both processes together
    assert [e["images_per_s"] for e in two.history.epochs] == pytest.approx([8 / t for t in seconds])
    same_weights(one.model, two.model)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


@pytest.mark.slow
def test_stop_reaches_every_rank_and_a_two_process_run_resumes_on_one_and_back(tmp_path):
    full = make_run(tmp_path / "full", 1, epochs=3).run()
    part = make_run(tmp_path / "run", 2, epochs=3, callbacks=[StopAt(3)]).start()
    part.wait(120)
    assert part.status == "stopped" and part.step == 3 and no_orphans(part) == [0]
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert (ckpt["epoch"], ckpt["iteration"], ckpt["step"]) == (1, 1, 3)

    on_one = make_run(tmp_path / "run", 1, epochs=3, seed=5, callbacks=[StopAt(5)])
    on_one.resume_from(tmp_path / "run" / "last.pt").run()
    assert on_one.status == "stopped" and on_one.step == 5
    back_on_two = make_run(tmp_path / "run", 2, epochs=3, seed=7)
    back_on_two.resume_from(tmp_path / "run" / "last.pt").run()
    assert back_on_two.status == "finished" and back_on_two.step == 6 and no_orphans(back_on_two) == [0]
    assert [r["lr"] for r in back_on_two.history.iterations] == pytest.approx(
        [r["lr"] for r in full.history.iterations])
    assert [r["loss"] for r in back_on_two.history.iterations] == pytest.approx(
        [r["loss"] for r in full.history.iterations], rel=1e-4)
    same_weights(full.model, back_on_two.model, atol=1e-5)


class FailsInRank1(Dataset):
    """toy samples; sample ``bad`` fails (or kills its process) when loaded by a forked rank only."""

    def __init__(self, n, bad, how):
        self.items, self.bad, self.how, self.parent = toy_samples(n), bad, how, os.getpid()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        if i == self.bad and os.getpid() != self.parent:
            if self.how == "kill":
                os.kill(os.getpid(), 9)
            if self.how == "nan":
                image, target = self.items[i]
                return image * float("nan"), target
            raise ValueError(f"sample {i} is broken")
        return self.items[i]


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_one_failing_rank_stops_all_with_its_error_and_leaves_no_process(tmp_path, how):
    data = FailsInRank1(8, bad=-1, how=how)
    order = ResumableSampler(8, seed=0).order()
    data.bad = order[2]  # rank 1's first sample of the first batch
    run = make_run(tmp_path, 2, data=data)
    with pytest.raises(DistributedError) as err:
        run.run()
    text = str(err.value)
    assert "rank 1" in text and (("sample" in text and "broken" in text) if how == "raise" else "SIGKILL" in text)
    assert run.status == "failed" and all(not p.is_alive() for p in run.group.workers)
    assert (tmp_path / "last.pt").exists()  # rank 0 kept the state it had


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_iteration(tmp_path):
    data = FailsInRank1(8, bad=-1, how="nan")
    data.bad = ResumableSampler(8, seed=0).order()[6]  # rank 1's share of the second batch
    run = make_run(tmp_path, 2, data=data)
    with pytest.raises(Exception) as err:
        run.run()
    assert "the loss became nan at epoch 1/2, iteration 2/2" in str(err.value)
    assert run.step == 1 and no_orphans(run) == [1]


def test_devices_and_batch_size_are_checked_before_anything_starts(tmp_path):
    from nbdetect.distributed import check_devices

    with pytest.raises(InputError) as err:
        check_devices(2, "cpu", 5)
    assert err.value.where == "batch_size" and "batch_size=4" in str(err.value)
    with pytest.raises(InputError) as err:
        check_devices(0, "cpu", 4)
    assert err.value.where == "devices"
    assert check_devices(2, "cpu", 4) == 2


@pytest.mark.slow
def test_a_notebook_cell_with_devices_2_shows_one_panel_stops_on_click_and_resumes_on_one_process(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    setup = ("import time, nbdetect\n"
             "ARGS = dict(preset='retinanet_tiny', weights=None, epochs=30, image_size=96, eval_map_every=0,\n"
             "            synthetic={'n_train': 16, 'n_val': 4, 'image_size': (96, 96)}, verify_data=False)\n"
             "run = nbdetect.alternative_1(None, None, devices=2, monitor='panel', **ARGS)")
    click = ("deadline = time.time() + 120\n"
             "while run.step < 3 and time.time() < deadline:\n"
             "    time.sleep(0.2)\n"
             "run.monitor.stop_button.click()\n"
             "run.wait(120)\n"
             "print('STATUS', run.status, run.step, [p.exitcode for p in run.group.workers], run.progress()['processes'])\n"
             "print('LINE', run.monitor.progress_text.value)")
    resume = ("again = nbdetect.alternative_1(None, None, devices=1, monitor=False, resume=True,\n"
              "                               **{**ARGS, 'epochs': 30})\n"
              "print('RESUMED', again.status, again.step, again.total_steps, again.out_dir == run.out_dir)")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (setup, click, resume)]
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    panels = [o for o in nb.cells[0].outputs if o.output_type == "display_data"
              and "application/vnd.jupyter.widget-view+json" in o.data]
    assert len(panels) == 1  # one panel for both processes
    said = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    status = said.split("STATUS ")[1].split("\n")[0].split(" ", 2)
    assert status[0] == "stopped" and 3 <= int(status[1]) < 120 and status[2].startswith("[0]")
    assert "cpu x 2 processes" in said.split("LINE ")[1]
    resumed = "".join(o.get("text", "") for o in nb.cells[2].outputs).split("RESUMED ")[1].split()
    assert resumed == ["finished", "120", "120", "True"]


def test_sync_batchnorm_keeps_the_optimizers_parameters_and_leaves_frozen_batchnorm_frozen():
    from nbdetect.distributed import check_devices, sync_batchnorm

    model = build_model("retinanet_tiny", 2, weights=None)
    frozen_bn(model.backbone.blocks[0])  # a frozen part, as torchvision's ResNet detectors have
    before = {id(p) for p in model.parameters()}
    synced = sync_batchnorm(model)
    kinds = {type(m).__name__ for m in synced.modules()}
    assert "SyncBatchNorm" in kinds and "BatchNorm2d" not in kinds and "FrozenBatchNorm2d" in kinds
    assert {id(p) for p in synced.parameters()} == before
    with pytest.raises(InputError) as err:
        check_devices(2, "cpu", 4, sync_bn=True)
    assert err.value.where == "sync_bn"


@pytest.mark.slow
def test_torchrun_runs_the_same_code_path_and_its_checkpoint_resumes_on_one_process(tmp_path):
    import json
    import subprocess
    import sys

    common = ["-m", "nbdetect", "train", "--preset", "retinanet_tiny", "--weights", "none", "--epochs", "3",
              "--train-images", "8", "--val-images", "4", "--threads", "1", "--out", str(tmp_path / "out")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *common],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["status"] == "finished" and metrics["epochs_done"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # rank 1 wrote nothing anywhere
    assert two.stdout.count('"status": "finished"') == 1  # one report, from rank 0
    ckpt = load_checkpoint(tmp_path / "out" / "last.pt")
    assert ckpt["step"] == 6 and ckpt["meta"]["devices"] == 2
    on_one = subprocess.run([sys.executable, *common, "--resume"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert on_one.returncode == 0, on_one.stderr[-2000:]
    assert "resuming from" in on_one.stdout and json.loads((tmp_path / "out" / "metrics.json").read_text())[
        "processes"] == 1


def test_every_rank_of_a_torchrun_job_takes_its_share_of_the_batch_and_only_rank_0_keeps_the_hooks(tmp_path):
    from nbdetect.distributed import Group

    runs = []
    for rank in (0, 1):
        torch.manual_seed(0)
        model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
        loader = make_loader(toy_samples(8), batch_size=4, seed=0)
        runs.append(TrainingRun(model, loader, None, recipe=ALTERNATIVE_1.replace(epochs=1), out_dir=tmp_path,
                                group=Group(rank=rank, world=2, backend="gloo"), device="cpu"))
    assert [r.train_loader.batch_size for r in runs] == [2, 2] and [len(r.train_loader) for r in runs] == [2, 2]
    assert runs[0].is_main and not runs[1].is_main
    assert {type(h).__name__ for h in runs[1].callbacks} == {"WeightEMA"}
    assert len(runs[0].callbacks) > 3 and runs[1].save() is None and not any(tmp_path.iterdir())


def test_a_torchrun_process_of_any_rank_leaves_its_group_at_the_end_and_a_forked_rank_leaves_it_to_its_worker(
        tmp_path):
    # torch.distributed's documented shutdown: every process that joined a group leaves it when its work ends
    import torch.distributed as dist

    from nbdetect.distributed import Group
    from nbdetect.strategy import DDP

    for joined in (True, False):
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / f'store{joined}'}", rank=0, world_size=1)
        try:
            strategy = DDP(2, Group(rank=1, world=2, backend="gloo") if joined else None)
            if not joined:  # a forked rank 1: its group was set after the fork (DDP._train_as)
                strategy.group = Group(rank=1, world=2, backend="gloo")
            strategy.teardown(None)
            assert dist.is_initialized() is not joined
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()


@pytest.mark.slow
def test_a_failure_in_rank_0_ends_the_forked_rank_too(tmp_path):
    class FailsInRank0(FailsInRank1):
        def __getitem__(self, i):
            if i == self.bad and os.getpid() == self.parent:
                raise ValueError(f"sample {i} is broken")
            return self.items[i]

    data = FailsInRank0(8, bad=ResumableSampler(8, seed=0).order()[4], how="raise")  # rank 0, second batch
    run = make_run(tmp_path, 2, data=data)
    with pytest.raises(ValueError, match="is broken"):
        run.run()
    assert run.status == "failed" and run.step == 1 and all(not p.is_alive() for p in run.group.workers)


@pytest.mark.slow
def test_a_forked_rank_may_load_its_batches_with_dataloader_workers(tmp_path):
    run = make_run(tmp_path, 2, epochs=1, num_workers=1).run()
    assert run.status == "finished" and run.step == 2 and no_orphans(run) == [0]
