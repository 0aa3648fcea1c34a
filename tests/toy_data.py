"""Tiny in-memory detection samples for fast engine tests."""
import torch


def toy_samples(n=8, size=96, seed=0, num_classes=2):
    """Bright squares on dark noise: a detector's loss drops on these within a few steps."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        img = torch.rand(3, size, size, generator=g) * 0.2
        label = 1 + i % num_classes
        x, y = 10 + (i * 7) % (size - 50), 12 + (i * 11) % (size - 50)
        img[label - 1, y:y + 30, x:x + 30] = 1.0
        out.append((img, {"boxes": torch.tensor([[x, y, x + 30.0, y + 30.0]]), "labels": torch.tensor([label]),
                          "image_id": i}))
    return out


def collate(batch):
    return tuple(zip(*batch))
