"""The tiny CPU backbone every family's ``*_tiny`` preset builds on (nbdetect.families)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


class TinyBackbone(nn.Module):
    """Five stride-2 conv blocks (strides 2..32) and an FPN over the last three."""

    def __init__(self, out_channels: int = 64, extra: str = "p6p7"):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

        widths = [16, 32, 64, 96, 128]
        blocks, cin = [], 3
        for w in widths:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(w, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                )
            )
            cin = w
        self.blocks = nn.ModuleList(blocks)
        extra_block = LastLevelP6P7(out_channels, out_channels) if extra == "p6p7" else LastLevelMaxPool()
        self.fpn = FeaturePyramidNetwork(widths[2:], out_channels, extra_blocks=extra_block)
        self.out_channels = out_channels

    def forward(self, x):
        feats = OrderedDict()
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= 2:
                feats[str(i - 2)] = x
        return self.fpn(feats)
