"""The study's residual autoencoder: a ResNet trunk whose last stage ends in ``latent`` channels
at 7x7 (for 224 px input), and a mirrored decoder of residual up-sampling blocks.

The fingerprint of an image is the encoder's output map flattened: 7 x 7 x latent numbers
(49, 98, 147). Built from torchvision's ResNet blocks, with no ImageNet weights; the trunk's base
width (``channels``, 64 as torchvision's) can be narrowed, as the shipped pretrained band encoder
is (:mod:`backend.autoencoder.pretrained`).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from backend.autoencoder.config import DOWNSAMPLING, check_arch, check_channels, view_parts
from backend.autoencoder.objectives import ProjectionHead

ARCHS = {
    # name: (block, blocks per stage)
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}
WIDTHS = (64, 128, 256, 512)  # stage widths of torchvision's ResNets


def stage_widths(channels: int = 64) -> tuple[int, ...]:
    """The four stage widths for a base width ``channels`` (64: torchvision's ResNets; 32 or 16:
    the same trunk 4x or 16x lighter, as the shipped pretrained encoder)."""
    return tuple(w * channels // 64 for w in WIDTHS)


class Encoder(nn.Module):
    """(B, 1, S, S) image -> (B, latent, S/32, S/32) fingerprint map."""

    def __init__(self, arch: str, latent: int, channels: int = 64):
        super().__init__()
        block, layers = ARCHS[arch]
        widths = stage_widths(channels)
        self.inplanes = channels
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.stages = nn.Sequential(*[self._stage(block, w, n, stride=1 if i == 0 else 2)
                                      for i, (w, n) in enumerate(zip(widths, layers))])
        self.out_channels = widths[-1] * block.expansion
        self.to_latent = nn.Conv2d(self.out_channels, latent, kernel_size=1)

    def _stage(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.stages(self.stem(x)))


class UpBlock(nn.Module):
    """Residual block that doubles the resolution: transposed 3x3 conv + 3x3 conv, with a
    transposed 1x1 shortcut (the mirror of a strided BasicBlock)."""

    def __init__(self, cin: int, cout: int, upsample: bool = True):
        super().__init__()
        stride = 2 if upsample else 1
        extra = dict(output_padding=1) if upsample else {}
        self.conv1 = nn.ConvTranspose2d(cin, cout, 3, stride=stride, padding=1, bias=False, **extra)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if upsample or cin != cout:
            self.shortcut = nn.Sequential(
                nn.ConvTranspose2d(cin, cout, 1, stride=stride, bias=False, **extra), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Decoder(nn.Module):
    """(B, latent, S/32, S/32) -> (B, 1, S, S) logits; its stages mirror the encoder's block counts."""

    def __init__(self, arch: str, latent: int, channels: int = 64):
        super().__init__()
        _, layers = ARCHS[arch]
        # basic-block widths for both depths: a bottleneck-wide (2048-channel) 3x3 decoder would
        # cost 8x the encoder's parameters for no gain in reconstruction
        widths = list(reversed(stage_widths(channels)))
        self.from_latent = nn.Sequential(nn.Conv2d(latent, widths[0], 1, bias=False), nn.BatchNorm2d(widths[0]),
                                         nn.ReLU(inplace=True))
        stages = []
        cin = widths[0]
        # three strided stages of the encoder -> three up-sampling stages, same block counts reversed
        for cout, n in zip(widths[1:], reversed(layers[1:])):
            stages += [UpBlock(cin, cout)] + [UpBlock(cout, cout, upsample=False) for _ in range(n - 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        # mirror of the stem: the max-pool -> a x2 up-sampling, the strided 7x7 conv -> a strided
        # 7x7 transposed conv to one channel of logits (full-resolution 3x3 stacks would cost more
        # than the whole encoder)
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(cin, 1, kernel_size=7, stride=2, padding=3, output_padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.from_latent(z)))


class Autoencoder(nn.Module):
    """``encode`` gives the fingerprint map; ``forward`` the reconstruction logits (reconstruction
    models); ``project`` the projection head's output of the flattened fingerprint (contrastive
    models, which have no decoder).

    A contrastive model of ``parts`` > 1 has one encoder and projection head per part (each
    trained with its own views, see :data:`backend.autoencoder.config.VIEW_RECIPES`); its
    fingerprint map is theirs stacked along the channels, part 1's first: (B, parts x latent, s, s).
    ``channels``: the trunk's base width (64 as torchvision's ResNets; 16 or 32 for a lighter one).
    """

    def __init__(self, arch: str = "resnet18", latent: int = 3, image_size: int = 224, objective: str = "reconstruction",
                 *, parts: int = 1, channels: int = 64):
        super().__init__()
        check_arch(arch, latent, image_size)
        check_channels(channels)
        self.arch, self.latent, self.image_size, self.parts, self.channels = arch, latent, image_size, parts, channels
        self.encoder = Encoder(arch, latent, channels)
        # parts after the first (their own modules, so a one-part model's weights keep their names)
        self.extra_encoders = nn.ModuleList([Encoder(arch, latent, channels) for _ in range(parts - 1)])
        # a contrastive model has no decoder: nothing trains it, and it would double the weights
        self.decoder = Decoder(arch, latent, channels) if objective == "reconstruction" else None
        self.head = None
        self.extra_heads = nn.ModuleList()
        if objective == "contrastive":
            self.head = ProjectionHead(self.part_size)
            self.extra_heads = nn.ModuleList([ProjectionHead(self.part_size) for _ in range(parts - 1)])

    @property
    def part_size(self) -> int:
        side = self.image_size // DOWNSAMPLING
        return side * side * self.latent

    @property
    def fingerprint_size(self) -> int:
        return self.part_size * self.parts

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.extra_encoders):
            return self.encoder(x)
        return torch.cat([self.encoder(x)] + [e(x) for e in self.extra_encoders], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def project(self, x: torch.Tensor, part: int = 0) -> torch.Tensor:
        """The projection of part ``part``'s fingerprint of ``x`` (the NT-Xent input)."""
        encoder = self.encoder if part == 0 else self.extra_encoders[part - 1]
        head = self.head if part == 0 else self.extra_heads[part - 1]
        return head(encoder(x).flatten(1))


def model_from_config(cfg: dict) -> Autoencoder:
    """An untrained :class:`Autoencoder` shaped as a recorded config says (a model's weights file
    or the shipped encoder's record): its objective, as many parts as its views have, its width."""
    objective = cfg.get("objective", "reconstruction")
    return Autoencoder(cfg["arch"], cfg["latent"], cfg["image_size"], objective,
                       parts=len(view_parts(cfg.get("views"), objective)), channels=cfg.get("channels", 64))
