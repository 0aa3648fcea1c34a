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
    for img, t in _draws(AugmentConfig(photometric=0.0)):  # geometry only, so the colours tell orientation
        assert img.dtype == torch.float32 and img.shape[0] == 3
        assert len(t["boxes"]) == len(t["labels"]) and t["boxes"].shape[-1] == 4
        h, w = img.shape[-2:]
        for box in t["boxes"]:
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
            if box[2] - box[0] >= 8:
                assert _orientation(img, box) == 1  # never mirrored
                seen_boxes += 1
        changed += img.shape[-1] != 128
    assert seen_boxes > 30 and changed > 3  # zoom out / crops did happen


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
