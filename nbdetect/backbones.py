"""The tiny CPU backbone every family's ``*_tiny`` preset builds on (nbdetect.families)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

#: The stage widths of the first tiny models (fasterrcnn_tiny and fcos_tiny still; retinanet_tiny until 2026-12-04).
WIDTHS = (16, 32, 64, 96, 128)


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class TinyBackbone(nn.Module):
    """Five stride-2 conv blocks (strides 2..32), a residual block after the stages listed in ``residual``
    (two 3x3 convs and a skip connection; 0-4, stage i at stride 2**(i+1)), and an FPN over the last three.

    ``widths``: the channels of the five stages. The defaults are the first tiny models'; retinanet_tiny moves
    compute from its head into the backbone with wider, residual stages (nbdetect.families)."""

    def __init__(self, out_channels: int = 64, extra: str = "p6p7", widths=WIDTHS, residual=()):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

        widths = [int(w) for w in widths]
        blocks, cin = [], 3
        for w in widths:
            blocks.append(nn.Sequential(*_conv(cin, w, 2), *_conv(w, w)))
            cin = w
        self.blocks = nn.ModuleList(blocks)
        # keyed by stage, so a checkpoint's weights say which stages have one (families._retinanet_rebuild)
        self.residual = nn.ModuleDict({str(i): nn.Sequential(*_conv(widths[i], widths[i]), *_conv(widths[i], widths[i])[:2])
                                       for i in sorted(set(int(i) for i in residual))})
        self.act = nn.ReLU(inplace=True)
        extra_block = LastLevelP6P7(out_channels, out_channels) if extra == "p6p7" else LastLevelMaxPool()
        self.fpn = FeaturePyramidNetwork(widths[2:], out_channels, extra_blocks=extra_block)
        self.out_channels = out_channels

    def forward(self, x):
        feats = OrderedDict()
        for i, block in enumerate(self.blocks):
            x = block(x)
            if str(i) in self.residual:
                x = self.act(x + self.residual[str(i)](x))
            if i >= 2:
                feats[str(i - 2)] = x
        return self.fpn(feats)
