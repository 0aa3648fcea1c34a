"""Box-aware augmentation: boxes follow the pixels, stay valid, labels stay aligned; no flip unless asked
(a flip turns 'keep right' into 'keep left'); only the training split nbdetect builds is augmented."""
import torch
from torch.utils.data import DataLoader

from nbdetect.data.augment import AugmentConfig, Augmented
from nbdetect.inputs import prepare_data


class Arrows(torch.utils.data.Dataset):
    """Each sample: boxes whose left half is red and right half blue (a left-right asymmetric sign)."""

    def __init__(self, n=40, size=128):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        img = torch.full((3, self.size, self.size), 0.3)
        boxes, labels = [], []
        for k in range(1 + i % 3):
            x, y = [int(v) for v in torch.randint(0, self.size - 40, (2,), generator=g)]
            img[:, y:y + 32, x:x + 16] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
            img[:, y:y + 32, x + 16:x + 32] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]
            boxes.append([x, y, x + 32, y + 32])
            labels.append(1 + k)
        return img, {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def _orientation(img, box):
    """+1 when the left half of the box is redder than the right half, -1 when mirrored."""
    x1, y1, x2, y2 = [int(round(v)) for v in box.tolist()]
    mid = (x1 + x2) // 2
    left = img[0, y1:y2, x1:mid].mean() - img[2, y1:y2, x1:mid].mean()
    right = img[0, y1:y2, mid:x2].mean() - img[2, y1:y2, mid:x2].mean()
    return 1 if left > right else -1


def _draws(config, n=40, seed=0):
    torch.manual_seed(seed)
    ds = Augmented(Arrows(n), config)
    return [ds[i] for i in range(len(ds))]


def test_boxes_stay_valid_and_follow_the_pixels_without_a_flip_by_default():
    seen_boxes, changed = 0, 0
    for img, t in _draws(AugmentConfig(photometric=0.0), n=80):  # geometry only, so the colours tell orientation
        assert img.dtype == torch.float32 and img.shape[0] == 3
        assert len(t["boxes"]) == len(t["labels"]) and t["boxes"].shape[-1] == 4
        h, w = img.shape[-2:]
        for box in t["boxes"]:
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
            if box[2] - box[0] >= 8:
                assert _orientation(img, box) == 1  # never mirrored
                seen_boxes += 1
        changed += img.shape[-1] != 128
    assert seen_boxes > 60 and changed > 4  # zoom out / crops did happen (9 of 80 at seed 0)


def test_flip_is_an_option_and_mirrors_pixels_and_boxes_together():
    orientations = [_orientation(img, box) for img, t in _draws(AugmentConfig(photometric=0.0, zoom_out=0.0, zoom_in=0.0, flip=True))
                    for box in t["boxes"]]
    assert 1 in orientations and -1 in orientations


def test_no_change_when_everything_is_off():
    base = Arrows(5)
    for (img, t), i in zip(_draws(AugmentConfig(photometric=0.0, zoom_out=0.0, zoom_in=0.0), n=5), range(5)):
        ref_img, ref_t = base[i]
        assert torch.equal(img, ref_img) and torch.equal(t["boxes"], ref_t["boxes"])


def test_only_the_training_split_built_by_nbdetect_is_augmented():
    data = prepare_data(Arrows(8), Arrows(4), num_classes=3, augment=True, validate=False)
    assert isinstance(data.train_loader.dataset, Augmented)
    assert not isinstance(data.val_loader.dataset, Augmented)
    mine = DataLoader(Arrows(8), batch_size=2, collate_fn=lambda b: tuple(zip(*b)))
    kept = prepare_data(mine, None, num_classes=3, augment=True, validate=False)
    assert kept.train_loader.dataset is mine.dataset  # your DataLoader, your transforms


def test_a_recipe_call_takes_augment_as_a_dict_of_config_fields_and_says_so(tmp_path):
    import nbdetect

    run = nbdetect.alternative_1(Arrows(4), Arrows(2), num_classes=3, augment={"flip": True, "zoom_in": 0.0},
                                 epochs=1, preset="retinanet_tiny", weights=None, monitor=False, device="cpu",
                                 image_size=96, eval_map_every=0, out_dir=tmp_path / "run")
    used = run.train_loader.dataset
    assert isinstance(used, Augmented) and used.config.flip is True and used.config.zoom_in == 0.0
    assert used.config.zoom_out == AugmentConfig().zoom_out  # the fields not given keep the defaults
    assert "horizontal flip" in run.recipe.describe() and "zoom-in crop p=0" in run.recipe.describe()


def _crop_draws(transform, seed, n=3000):
    """(share of draws that cropped, mean crop width, mean crop height) of ``transform``'s parameters for one
    128x96 image with a 50x40 box and a 12x12 one."""
    from torchvision import tv_tensors

    boxes = tv_tensors.BoundingBoxes(torch.tensor([[20.0, 30.0, 70.0, 70.0], [100.0, 10.0, 112.0, 22.0]]),
                                     format="XYXY", canvas_size=(96, 128))
    torch.manual_seed(seed)
    params = [transform.make_params([tv_tensors.Image(torch.zeros(3, 96, 128)), boxes]) for _ in range(n)]
    crops = [p for p in params if p]
    for p in crops:  # every crop keeps a box centre strictly inside and is inside the image
        assert p["is_within_crop_area"].any() and p["width"] > 0 and p["height"] > 0
        assert p["left"] + p["width"] <= 128 and p["top"] + p["height"] <= 96
    return (len(crops) / n, sum(p["width"] for p in crops) / len(crops), sum(p["height"] for p in crops) / len(crops))


def test_the_batched_iou_crop_draws_torchvisions_distribution_of_crops():
    from torchvision.transforms import v2

    from nbdetect.data.augment import _iou_crop_class

    options = dict(min_scale=0.4, sampler_options=[0.3, 0.5, 0.7, 0.9, 1.0], trials=20)
    ours, theirs = _crop_draws(_iou_crop_class()(**options), 0), _crop_draws(v2.RandomIoUCrop(**options), 1)
    assert 0.3 < theirs[0] < 0.9  # the case crops often enough to compare
    assert abs(ours[0] - theirs[0]) < 0.04  # ~4 standard errors of a share over 3000 draws
    assert abs(ours[1] - theirs[1]) < 3.0 and abs(ours[2] - theirs[2]) < 3.0  # mean crop sides, px


def test_the_iou_crop_leaves_an_image_without_boxes_as_it_is():
    from torchvision import tv_tensors

    from nbdetect.data.augment import _iou_crop_class

    empty = tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="XYXY", canvas_size=(64, 64))
    crop = _iou_crop_class()(min_scale=0.4, sampler_options=[0.3, 1.0], trials=5)
    assert crop.make_params([tv_tensors.Image(torch.rand(3, 64, 64)), empty]) == {}


def test_the_hue_rotation_keeps_grey_and_luma_and_turns_colours():
    from nbdetect.data.augment import rotate_hue

    torch.manual_seed(0)
    image = torch.rand(3, 16, 16) * 0.3 + 0.35  # near grey, so a small turn never clamps
    assert torch.allclose(rotate_hue(image.clone(), 0.0), image, atol=1e-5)
    assert torch.allclose(rotate_hue(rotate_hue(image.clone(), 0.05), -0.05), image, atol=1e-4)
    luma = torch.tensor([0.299, 0.587, 0.114])
    turned = rotate_hue(image.clone(), 0.05)
    assert torch.allclose(torch.einsum("c,chw->hw", luma, turned), torch.einsum("c,chw->hw", luma, image), atol=1e-4)
    assert (turned - image).abs().max() > 0.01
    grey = torch.full((3, 4, 4), 0.5)
    assert torch.allclose(rotate_hue(grey.clone(), 0.3), grey, atol=1e-5)
    red = torch.zeros(3, 1, 1) + torch.tensor([0.8, 0.2, 0.2])[:, None, None]
    assert rotate_hue(red.clone(), 0.5)[0, 0, 0] < 0.5  # half a turn: red goes to its complement (cyan)
    assert rotate_hue(torch.ones(3, 2, 2) * torch.tensor([1.0, 0.0, 0.0])[:, None, None], 0.25).min() >= 0.0  # clamped


def test_photometric_jitter_changes_colours_and_never_geometry():
    changed = 0
    for (img, t), i in zip(_draws(AugmentConfig(photometric=1.0, zoom_out=0.0, zoom_in=0.0), n=8), range(8)):
        ref_img, ref_t = Arrows(8)[i]
        assert img.shape == ref_img.shape and torch.equal(t["boxes"], ref_t["boxes"])
        assert 0.0 <= img.min() and img.max() <= 1.0
        changed += not torch.allclose(img, ref_img, atol=1e-3)
    assert changed == 8
