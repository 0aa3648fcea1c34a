import csv
import json

import pytest
import torch

from toy_data import toy_samples
from nbdetect import alternative_1, alternative_2, alternative_3, make_submission, raise_lr
from nbdetect.checkpoint import load_checkpoint
from nbdetect.models import build_model

FAST = dict(weights=None, epochs=2, monitor=False, image_size=96, eval_map_every=0)


def test_alternative_1_on_a_user_dataset(tmp_path):
    run = alternative_1(toy_samples(8), toy_samples(4, seed=1), num_classes=2, preset="retinanet_tiny",
                        out_dir=tmp_path, **FAST)
    assert run.status == "finished" and run.epoch == 2
    assert run.recipe.optimizer == "adamw" and run.recipe.grad_clip == 10.0
    assert max(run.planned_lr) == pytest.approx(5e-4)
    assert run.planned_lr[-1] == pytest.approx(1e-6)
    assert run.model.head.classification_head.num_classes == 3  # K + 1
    assert (tmp_path / "best.pt").exists() and (tmp_path / "history.jsonl").exists()
    assert (run.model.proposal_matcher.high_threshold, run.model.proposal_matcher.low_threshold) == (0.3, 0.2)
    assert load_checkpoint(tmp_path / "best.pt")["meta"]["match_iou"] == [0.3, 0.2]


def test_a_users_retinanet_is_told_about_the_recipes_anchor_matching_and_can_keep_its_own(tmp_path, capsys):
    mine = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    run = alternative_1(toy_samples(4), None, num_classes=2, model=mine, out_dir=tmp_path / "a",
                        **{**FAST, "epochs": 1})
    said = capsys.readouterr().out
    assert "anchors matched at IoU >= 0.3" in said and "it had 0.5/0.4" in said and "match_iou=False" in said
    assert run.model.proposal_matcher.high_threshold == 0.3
    kept = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=kept, out_dir=tmp_path / "b", match_iou=False,
                  **{**FAST, "epochs": 1})
    assert kept.proposal_matcher.high_threshold == 0.5 and "anchors matched" not in capsys.readouterr().out


def test_alternative_1_trains_with_the_naming_loss_logged_beside_the_focal_loss_and_can_go_without(tmp_path, capsys):
    run = alternative_1(toy_samples(6), toy_samples(4, seed=1), num_classes=2, preset="retinanet_tiny",
                        out_dir=tmp_path / "a", **{**FAST, "epochs": 1})
    assert run.model.head.naming_weight == 1.0
    assert load_checkpoint(tmp_path / "a" / "best.pt")["meta"]["naming_loss"] == 1.0
    record = [json.loads(line) for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    assert any("naming" in json.dumps(r) for r in record)  # its own column, apart from "classification"
    mine = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=mine, out_dir=tmp_path / "b", **{**FAST, "epochs": 1})
    assert "with a naming loss" in capsys.readouterr().out and mine.head.naming_weight == 1.0
    off = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "c",
                        naming_loss=False, **{**FAST, "epochs": 1})
    assert not hasattr(off.model.head, "naming_weight")
    assert "naming_loss" not in load_checkpoint(tmp_path / "c" / "best.pt")["meta"]


def test_box_loss_giou_trains_a_retinanets_boxes_with_it_and_says_so_to_a_users_model(tmp_path, capsys):
    run = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "a",
                        box_loss="giou", **{**FAST, "epochs": 1})
    assert run.model.head.regression_head._loss_type == "giou"
    assert load_checkpoint(tmp_path / "a" / "best.pt")["meta"]["box_loss"] == "giou"
    mine = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=mine, out_dir=tmp_path / "b", box_loss="giou",
                  **{**FAST, "epochs": 1})
    assert "boxes with the giou loss; it had l1" in capsys.readouterr().out
    kept = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=kept, out_dir=tmp_path / "c", **{**FAST, "epochs": 1})
    assert kept.head.regression_head._loss_type == "l1" and "giou" not in capsys.readouterr().out


def test_box_weight_weights_the_box_loss_records_it_and_says_so_to_a_users_model(tmp_path, capsys):
    run = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "a",
                        box_weight=2.0, **{**FAST, "epochs": 1})
    assert run.model.nbdetect_box_weight == 2.0 and "box loss x2" in run.recipe.describe()
    assert load_checkpoint(tmp_path / "a" / "best.pt")["meta"]["box_weight"] == 2.0
    mine = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=mine, out_dir=tmp_path / "b", box_weight=2.0,
                  **{**FAST, "epochs": 1})
    assert "box regression loss weighted 2 (it had 1)" in capsys.readouterr().out
    off = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "c",
                        **{**FAST, "epochs": 1})  # the recipe's default: as the model computes it
    assert getattr(off.model, "nbdetect_box_weight", 1.0) == 1.0
    assert "box_weight" not in load_checkpoint(tmp_path / "c" / "best.pt")["meta"]


def test_iou_scores_trains_a_retinanets_scores_against_iou_records_it_and_says_so_to_a_users_model(tmp_path, capsys):
    run = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "a",
                        iou_scores=True, **{**FAST, "epochs": 1})
    assert run.model.head.iou_scores is True and run.model.head.naming_weight == 1.0
    assert "IoU-aware class scores" in run.recipe.describe() and run.status == "finished"
    assert load_checkpoint(tmp_path / "a" / "best.pt")["meta"]["iou_scores"] is True
    mine = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=mine, out_dir=tmp_path / "b", iou_scores=True,
                  **{**FAST, "epochs": 1})
    assert "class scores against the IoU" in capsys.readouterr().out and mine.head.iou_scores is True
    off = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "c",
                        **{**FAST, "epochs": 1})
    assert not getattr(off.model.head, "iou_scores", False)
    assert "iou_scores" not in load_checkpoint(tmp_path / "c" / "best.pt")["meta"]


@pytest.mark.parametrize("option", [{"naming_loss": -1}, {"box_loss": "iou"}, {"box_loss": 1}, {"box_weight": 0},
                                    {"box_weight": "x2"}, {"iou_scores": "yes"}])
def test_a_bad_loss_option_is_refused_before_a_folder_is_made(tmp_path, option):
    from nbdetect.errors import InputError

    with pytest.raises(InputError) as err:
        alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "x",
                      **option, **FAST)
    assert next(iter(option)) in str(err.value) and not (tmp_path / "x").exists()


def test_alternative_2_builds_faster_rcnn_with_background_class(tmp_path):
    run = alternative_2(toy_samples(8), None, num_classes=2, preset="fasterrcnn_tiny", out_dir=tmp_path, **FAST)
    assert run.status == "finished"
    assert run.recipe.optimizer == "sgd" and max(run.planned_lr) == pytest.approx(0.005)
    assert run.model.roi_heads.box_predictor.cls_score.out_features == 3


def test_zero_based_labels_are_refused_with_a_hint_and_accepted_with_label_base(tmp_path):
    data = toy_samples(8)
    for _, t in data:
        t["labels"] = t["labels"] - 1  # 0..K-1
    with pytest.raises(ValueError, match=r"(?s)label 0.*label_base=0"):
        alternative_1(data, None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path, **FAST)
    run = alternative_1(data, None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path, label_base=0, **FAST)
    assert run.status == "finished"


def test_bad_boxes_are_reported_before_training_with_their_index(tmp_path):
    data = toy_samples(8)
    data[5][1]["boxes"] = torch.tensor([[50.0, 50, 20, 80]])  # x2 < x1
    with pytest.raises(ValueError, match=r"(?s)sample 5"):
        alternative_1(data, None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path, **FAST)
    assert not (tmp_path / "last.pt").exists()


def test_resume_continues_where_the_run_stopped(tmp_path):
    from nbdetect.callbacks import Callback

    class StopAfterEpoch1(Callback):
        def on_epoch_end(self, run, rec):
            run.stop()

    first = alternative_1(toy_samples(8), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path,
                          callbacks=[StopAfterEpoch1()], **FAST)
    assert first.status == "stopped" and first.epoch == 1
    second = alternative_1(toy_samples(8), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path,
                           resume=True, **FAST)
    assert second.status == "finished" and second.step == second.total_steps
    assert [r["step"] for r in second.history.iterations] == list(range(1, second.total_steps + 1))


def test_a_run_of_an_earlier_retinanet_tiny_shape_resumes_in_its_shape(tmp_path, monkeypatch):
    """A run stopped before retinanet_tiny changed shape (4-conv head, narrower backbone) continues after the
    update: its model is rebuilt in the checkpoint's shape, read from its weights (before: the new shape was
    built and the checkpoint could not be loaded into it)."""
    from nbdetect import families
    from nbdetect.callbacks import Callback

    class StopAfterEpoch1(Callback):
        def on_epoch_end(self, run, rec):
            run.stop()

    new_shape = dict(families.RETINANET_TINY_SHAPE)
    monkeypatch.setattr(families, "RETINANET_TINY_SHAPE", {"head_convs": 4, "widths": (16, 32, 64, 96, 128),
                                                           "residual": (), "output_kernel": 3})
    first = alternative_1(toy_samples(8), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path,
                          callbacks=[StopAfterEpoch1()], **FAST)
    assert first.status == "stopped" and len(first.model.head.classification_head.conv) == 4
    monkeypatch.setattr(families, "RETINANET_TINY_SHAPE", new_shape)  # the update
    second = alternative_1(toy_samples(8), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path,
                           resume=True, **FAST)
    assert second.status == "finished" and second.epoch == 2 and second.resumed
    assert len(second.model.head.classification_head.conv) == 4 and not len(second.model.backbone.residual)
    assert second.model.head.classification_head.cls_logits.kernel_size == (3, 3)  # torchvision's, as saved
    fresh = alternative_1(toy_samples(8), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "new",
                          **FAST)
    assert len(fresh.model.head.classification_head.conv) == new_shape["head_convs"]


def test_alternative_3_raises_the_lr_of_the_live_optimizer(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 45], gamma=0.1)
    for _ in range(31):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-5)  # the seed's situation
    state_before = len(opt.state)
    run = alternative_3(opt, model, toy_samples(8), None, scheduler=sched, lr=1e-4, epochs=2, start_epoch=41,
                        monitor=False, out_dir=tmp_path, eval_map_every=0)
    out = capsys.readouterr().out
    assert "LR raised from 2e-05 to 0.0001 (5x)" in out and "loss before this run" in out
    assert run.status == "finished" and run.optimizer is opt and len(opt.state) >= state_before
    # judged against the loss before the boost, not against its own first epoch
    assert run.verdict.facts.reference == pytest.approx(run.meta["reference_loss"])
    assert run.meta["reference_loss"] != max(run.history.epochs[0]["train_loss"], 0)
    assert [r["lr"] for r in run.history.iterations] == pytest.approx([1e-4] * run.total_steps)
    assert sched.base_lrs == [1e-4]
    with pytest.raises(ValueError, match="does not hold any parameter"):
        alternative_3(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), model, toy_samples(4))
    with pytest.raises(ValueError, match="positive"):
        raise_lr(opt, -1.0)
    lower = alternative_3(opt, model, toy_samples(8), None, lr=1e-5, epochs=1, monitor=False,
                          out_dir=tmp_path / "lower", eval_map_every=0, previous_loss=1.5)
    assert "LR lowered from 0.0001 to 1e-05 (10x)" in capsys.readouterr().out
    assert lower.verdict.facts.reference == 1.5  # the loss the user gave as "before"


def test_submission_writes_csv_and_coco_json_in_original_pixels(tmp_path):
    from PIL import Image

    alternative_1(toy_samples(8), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "run",
                  **FAST)
    folder = tmp_path / "test_images"
    folder.mkdir()
    for i, size in enumerate([(96, 96), (120, 80)]):
        Image.new("RGB", size, (40, 40, 40)).save(folder / f"img{i}.png")
    out = make_submission(tmp_path / "run" / "best.pt", folder, tmp_path / "sub", score_threshold=0.0)
    rows = list(csv.DictReader(open(out["csv"])))
    coco = json.loads(out["coco_json"].read_text())
    assert out["images"] == 2 and len(rows) == len(coco) == out["boxes"] > 0
    assert {r["file_name"] for r in rows} <= {"img0.png", "img1.png"}
    wide = [r for r in rows if r["file_name"] == "img1.png"]
    assert all(0 <= float(r["x1"]) <= float(r["x2"]) <= 120.5 and float(r["y2"]) <= 80.5 for r in wide)
    assert all(len(d["bbox"]) == 4 and d["bbox"][2] >= 0 for d in coco)
    assert load_checkpoint(tmp_path / "run" / "best.pt")["meta"]["preset"] == "retinanet_tiny"


def test_box_voting_is_alternative_1s_and_a_model_rebuilt_from_its_checkpoint_predicts_the_same(tmp_path, capsys):
    import torch

    from nbdetect.submission import load_model

    run = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "a",
                        **{**FAST, "epochs": 1})
    assert run.model.nbdetect_vote_iou == 0.6 and "voting at IoU 0.6" in run.recipe.describe()
    assert load_checkpoint(tmp_path / "a" / "best.pt")["meta"]["box_voting"] == 0.6
    rebuilt, _ = load_model(tmp_path / "a" / "best.pt", "cpu")
    assert rebuilt.nbdetect_vote_iou == 0.6
    image = [toy_samples(1)[0][0]]
    run.model.load_state_dict(rebuilt.state_dict())
    run.model.eval()
    for m in (run.model, rebuilt):
        m.score_thresh = 0.0
    with torch.no_grad():
        assert torch.allclose(run.model(image)[0]["boxes"], rebuilt(image)[0]["boxes"])
    mine = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    alternative_1(toy_samples(4), None, num_classes=2, model=mine, out_dir=tmp_path / "b", **{**FAST, "epochs": 1})
    assert "boxes placed by voting" in capsys.readouterr().out and mine.nbdetect_vote_iou == 0.6
    off = alternative_1(toy_samples(4), None, num_classes=2, preset="retinanet_tiny", out_dir=tmp_path / "c",
                        box_voting=False, **{**FAST, "epochs": 1})
    assert not hasattr(off.model, "nbdetect_vote_iou")
    assert "box_voting" not in load_checkpoint(tmp_path / "c" / "best.pt")["meta"]
    plain, _ = load_model(tmp_path / "c" / "best.pt", "cpu")
    assert "postprocess_detections" not in vars(plain)
