"""The config of one training run, importable without torch.

The web app validates training jobs with the same :meth:`TrainConfig.validate` as the CLI, in a
process that must never import torch (CUDA belongs to the job workers); so the config, its
bounds and the study's grid live here, and :mod:`backend.autoencoder.training` re-exports them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from backend.data.model_ids import make_model_id
from backend.errors import ParameterError

ARCH_NAMES = ("resnet18", "resnet50")
LATENTS = (1, 2, 3)
DOWNSAMPLING = 32             # stem (2) x max-pool (2) x three strided stages (8)
PAPER_GRID = {
    "arch": ("resnet18", "resnet50"), "latent": (1, 2, 3), "window": (1, 2, 3),
    "epochs": (30, 60, 90, 120), "split": (0.0, 0.1, 0.5),
}
DEVICES = ("auto", "cpu", "cuda", "mps")
#: the trunk's base width (stage widths channels x 1, 2, 4, 8): torchvision's 64, or narrower
CHANNELS = (16, 32, 64)
#: torchvision's width, the study's and every model's before the width was a choice
FULL_WIDTH = 64
#: ``init_from`` naming the encoder shipped with bandscape (backend.autoencoder.pretrained)
PRETRAINED = "pretrained"
#: ``init_from``'s default: the shipped encoder when the run asks for its trunk (TRUNK_FIELDS), else
#: from scratch; resolved when the config is made, so a config never holds it
AUTO = "auto"
#: where it is shipped (band_encoder.pt and .json; read by backend.autoencoder.shipped, written by
#: ``python -m backend pretrain``)
PRETRAINED_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_NAME, RECORD_NAME = "band_encoder.pt", "band_encoder.json"
#: the fields a run fine-tuning the shipped encoder takes from it (its network and what it learnt);
#: the others (window, epochs, split, lr, seed, fine-tuning...) are the run's own
TRUNK_FIELDS = ("arch", "latent", "image_size", "channels", "line_width", "noise_prob", "objective", "temperature",
                "views")
#: the trunk width of a run from scratch that does not say it
SCRATCH_CHANNELS = 32
#: the tags of its models: encoded as shipped, or pre-trained further on a user's images
PRETRAINED_TAG, PRETRAINED_TUNED = "pretrained", "pretrained-tuned"
#: what the encoder is trained for (see backend.autoencoder.objectives)
OBJECTIVES = ("contrastive", "reconstruction")
#: the contrastive objective's view recipes, each the view sets (backend.autoencoder.objectives.VIEW_SETS)
#: of the fingerprint's parts: "physical" (the default, for E_F-referenced band plots) is two parts,
#: one trained with views that move E_F ("shape": it learns the bands' shapes) and one with views
#: that keep it ("fermi": it learns where E_F sits in them); "lattice" is the first demo's views
#: (its generator's factors), "narrow" the first physical set (E_F and scale nearly fixed)
VIEW_RECIPES = {
    "physical": ("shape", "fermi"),
    "lattice": ("lattice",),
    "shape": ("shape",),
    "fermi": ("fermi",),
    "narrow": ("narrow",),
}
VIEWS = tuple(VIEW_RECIPES)
#: what the map of one part of a two-part fingerprint groups (backend.autoencoder.parts), in words
PART_MEANINGS = {
    "shape": "band shapes whatever the filling (it was trained with views that move E_F)",
    "fermi": "what sits at E_F: the filling, gaps, flat bands and crossings there (trained with views that keep E_F)",
}
#: optional clustering-friendly fine-tuning after it
CLUSTER_LOSSES = ("none", "wcss", "dec", "idec")
#: the pre-training loss of each objective, as the literature names it (SimCLR's NT-Xent; the
#: study's binary cross-entropy of the reconstructed ink mask)
OBJECTIVE_LOSSES = {"contrastive": "NT-Xent", "reconstruction": "BCE"}
#: the term each clustering fine-tuning adds: K-Means' within-cluster sum of squares, or DEC's
#: KL divergence to the sharpened target
CLUSTER_TERMS = {"wcss": "WCSS", "dec": "KL", "idec": "KL"}
#: the study's own settings, where train's defaults differ from them (``TrainConfig(**STUDY_RECIPE)``
#: reproduces the paper's models; the grid's epochs and splits are the study's either way)
STUDY_RECIPE = dict(objective="reconstruction", image_size=224, channels=FULL_WIDTH, max_lr=1e-3)


def shipped_trunk() -> tuple | None:
    """The shipped encoder's TRUNK_FIELDS as recorded in its JSON (``(name, value)`` pairs), or
    None when the record is missing or unreadable (read without torch: the web app checks forms)."""
    return _read_trunk(PRETRAINED_DIR / RECORD_NAME)


@functools.lru_cache(maxsize=4)
def _read_trunk(record: Path) -> tuple | None:
    try:
        config = json.loads(record.read_text())["config"]
        return tuple((k, config[k]) for k in TRUNK_FIELDS)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trunk_mismatch(fields: dict) -> list[str]:
    """Why a run of these fields cannot start from the shipped encoder (empty: it can): each field
    that differs from the encoder's, or its record missing. A field given as None is not asked."""
    trunk = shipped_trunk()
    if trunk is None:
        return [f"its record {PRETRAINED_DIR / RECORD_NAME} is missing or unreadable"]
    return [f"{k} {fields[k]!r} (the shipped encoder's: {v!r})" for k, v in trunk
            if fields.get(k) is not None and fields[k] != v]


def describe_trunk() -> str:
    """The shipped encoder's trunk in words: 'resnet18, latent 3, 128 px, width 16, contrastive, physical views'."""
    trunk = dict(shipped_trunk() or ())
    if not trunk:
        return "its record is missing"
    return (f"{trunk['arch']}, latent {trunk['latent']}, {trunk['image_size']} px, width {trunk['channels']}, "
            f"{trunk['objective']}, {trunk['views']} views")


def loss_name(objective: str, cluster_loss: str = "none", cluster_weight: float = 0.1) -> str:
    """What a run minimises, as the loss chart names it: 'NT-Xent', 'BCE', or with clustering
    fine-tuning the fine-tuning phase's 'NT-Xent + 0.1·WCSS' (DEC: the KL term alone)."""
    base = OBJECTIVE_LOSSES.get(objective, objective)
    if cluster_loss in (None, "", "none"):
        return base
    term = CLUSTER_TERMS.get(cluster_loss, cluster_loss)
    return term if cluster_loss == "dec" else f"{base} + {float(cluster_weight):g}·{term}"


def view_parts(views: str | None, objective: str = "contrastive") -> tuple[str, ...]:
    """The view sets of a recorded config's fingerprint parts (a model recorded before the view
    recipes had names trained with the lattice views; a reconstruction model has one part)."""
    if objective != "contrastive":
        return ("none",)
    return VIEW_RECIPES.get(views or "lattice", (views,))


def check_channels(channels: int) -> None:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in CHANNELS:
        raise ParameterError(f"channels must be one of {CHANNELS} (the trunk's base width), got {channels!r}")


def check_arch(arch: str, latent: int, image_size: int) -> None:
    if arch not in ARCH_NAMES:
        raise ParameterError(f"arch must be one of {ARCH_NAMES}, got {arch!r}")
    if isinstance(latent, bool) or not isinstance(latent, int) or latent not in LATENTS:
        raise ParameterError(f"latent must be one of {LATENTS}, got {latent!r}")
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < DOWNSAMPLING \
            or image_size % DOWNSAMPLING:
        raise ParameterError(f"image_size must be a multiple of {DOWNSAMPLING} (>= 32; 224 as the study), got {image_size!r}")


@dataclass
class TrainConfig:
    """Hyperparameters of one model.

    The defaults are the recipe that measured best on labelled DFT-like band structures, on
    lattices the demo does not contain and on the published plots' physics (docs/findings.md,
    *Fingerprint quality*): the contrastive objective on 128 px ink masks with the two-part
    ``physical`` views (a band-shape part and a Fermi-level part), 60 epochs, one-cycle to lr
    2e-3. Architecture, latent, split and batch are the study's; :data:`STUDY_RECIPE` holds the
    rest of its settings.

    By default (``init_from="auto"``) a run whose trunk is the shipped encoder's (TRUNK_FIELDS:
    ResNet-18, latent 3, 128 px, width 16, the physical views) starts from it: 60 epochs on the
    user's images fine-tune what the 20,000-structure corpus taught it, which keeps where E_F sits
    on published DFT plots better than training from scratch (docs/findings.md, *Fine-tuning the
    128 px shipped encoder*), in 2-4 minutes for 600 images on 2 CPU cores. Any other trunk
    trains from scratch, at width 32 unless given (half torchvision's: at 128 px it costs what the
    full width costs at 64 px)."""

    arch: str = "resnet18"
    latent: int = 3
    window: float = 1
    epochs: int = 60
    split: float = 0.1
    image_size: int = 128
    seed: int = 0
    batch_size: int = 64
    max_lr: float = 2e-3
    weight_decay: float = 0.01
    noise_prob: float = 0.5
    line_width: float = 1
    device: str = "auto"
    tag: str = ""
    # the trunk's base width: 64 as torchvision's ResNets, 32 or 16 for a lighter encoder; None: the
    # shipped encoder's (16) when the run starts from it, else SCRATCH_CHANNELS
    channels: int | None = None
    # what the fingerprint is trained for: "contrastive" (views that differ by a Fermi-level
    # shift, a hopping-scale stretch, an energy inversion, line width and localized noise should
    # match) or "reconstruction" (the study's denoising autoencoder)
    objective: str = "contrastive"
    temperature: float = 0.2
    # what two contrastive views may differ by, for each part of the fingerprint (VIEW_RECIPES)
    views: str = "physical"
    # clustering-friendly fine-tuning after pre-training: k centroids in fingerprint space
    cluster_loss: str = "none"
    clusters: int | None = None
    cluster_epochs: int = 10
    cluster_weight: float = 0.1
    # fine-tune a trained model of the same data root instead of pre-training from scratch (its
    # architecture, objective and epochs are taken over; only the fine-tuning runs); or
    # "pretrained": pre-train ``epochs`` more from the encoder shipped with bandscape; "auto" (the
    # default): "pretrained" when this run's trunk is the shipped encoder's, else "" (from scratch)
    init_from: str = AUTO

    def __post_init__(self):
        if self.init_from == AUTO:
            self.init_from = "" if trunk_mismatch(self.__dict__) else PRETRAINED
        if self.channels is None:
            shipped = dict(shipped_trunk() or ())
            self.channels = shipped.get("channels", SCRATCH_CHANNELS) if self.init_from == PRETRAINED \
                else SCRATCH_CHANNELS

    @classmethod
    def from_record(cls, config: dict) -> "TrainConfig":
        """The config a model's JSON records (its fields this version knows; a record from before a
        field existed gets that field's value of the time: full width, no init)."""
        known = {k: v for k, v in config.items() if k in cls.__dataclass_fields__}
        known.setdefault("channels", FULL_WIDTH)
        known.setdefault("init_from", "")
        return cls(**known)

    def validate(self) -> "TrainConfig":
        check_arch(self.arch, self.latent, self.image_size)
        check_channels(self.channels)
        for name, low in (("epochs", 1), ("batch_size", 2), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.split, (int, float)) or not 0 <= self.split < 1:
            raise ParameterError(f"split must be in [0, 1), got {self.split!r}")
        if not isinstance(self.window, (int, float)) or not self.window > 0:
            raise ParameterError(f"window must be a positive number of eV, got {self.window!r}")
        for name in ("max_lr", "line_width"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.weight_decay < 1 or not 0 <= self.noise_prob <= 1:
            raise ParameterError("weight_decay must be in [0, 1) and noise_prob in [0, 1]")
        if self.device not in DEVICES:
            raise ParameterError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.tag and not all(c.isalnum() or c in "-." for c in self.tag):
            raise ParameterError(f"tag may hold letters, digits, '-' and '.', got {self.tag!r}")
        if self.objective not in OBJECTIVES:
            raise ParameterError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.views not in VIEWS:
            raise ParameterError(f"views must be one of {VIEWS}, got {self.views!r}")
        if not isinstance(self.temperature, (int, float)) or not 0 < self.temperature <= 10:
            raise ParameterError(f"temperature must be in (0, 10], got {self.temperature!r}")
        if self.cluster_loss not in CLUSTER_LOSSES:
            raise ParameterError(f"cluster_loss must be one of {CLUSTER_LOSSES}, got {self.cluster_loss!r}")
        if self.init_from and self.init_from != PRETRAINED and self.cluster_loss == "none":
            raise ParameterError("init_from fine-tunes a trained model: it needs a cluster_loss (wcss, dec or idec)")
        if self.cluster_loss != "none":
            if self.clusters is None:
                raise ParameterError(f"cluster_loss {self.cluster_loss!r} needs the number of clusters k "
                                     "(--clusters K)")
            if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or self.clusters < 2:
                raise ParameterError(f"clusters must be an integer >= 2, got {self.clusters!r}")
            if isinstance(self.cluster_epochs, bool) or not isinstance(self.cluster_epochs, int) \
                    or self.cluster_epochs < 1:
                raise ParameterError(f"cluster_epochs must be an integer >= 1, got {self.cluster_epochs!r}")
            if not isinstance(self.cluster_weight, (int, float)) or not self.cluster_weight > 0:
                raise ParameterError(f"cluster_weight must be positive, got {self.cluster_weight!r}")
        elif self.clusters is not None and (isinstance(self.clusters, bool) or not isinstance(self.clusters, int)
                                            or self.clusters < 2):
            raise ParameterError(f"clusters must be an integer >= 2, got {self.clusters!r}")
        return self

    @property
    def recipe(self) -> str:
        """The objective and fine-tuning in a few characters: 'contrastive', 'reconstruction-idec4'."""
        extra = f"-{self.cluster_loss}{self.clusters}" if self.cluster_loss != "none" else ""
        views = f"-{self.views}" if self.objective == "contrastive" and self.views != "lattice" else ""
        return self.objective + views + extra

    @property
    def model_id(self) -> str:
        """The study's id; a run at another image size, with another objective (the study's is
        reconstruction), with fine-tuning, a narrower trunk or from the shipped pretrained encoder
        gets suffixes: ``..._size64_contrastive``, ``..._size64_contrastive_physical_ch32_pretrained-tuned``."""
        parts = [f"size{self.image_size}"] if self.image_size != 224 else []
        if self.recipe != "reconstruction":
            parts.append(self.recipe.replace("-", "_"))
        if self.channels != 64:
            parts.append(f"ch{self.channels}")
        if self.init_from == PRETRAINED:
            parts.append(PRETRAINED_TUNED)
        if self.tag:
            parts.append(self.tag)
        return make_model_id(self.arch, self.latent, self.window, epochs=self.epochs, split=self.split,
                             line_width=self.line_width, tag="_".join(parts))

    @property
    def parts(self) -> int:
        """How many encoders the fingerprint is made of (one per view set of a contrastive recipe)."""
        return len(VIEW_RECIPES[self.views]) if self.objective == "contrastive" else 1

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def paper_grid(**fixed) -> list[TrainConfig]:
    """The study's 216 configurations (or a sub-grid: fix or restrict any field, e.g.
    ``window=(1,)``); other TrainConfig fields (image_size, seed...) pass through. Every model
    trains from scratch unless ``init_from`` says otherwise: a grid compares like with like."""
    grid = dict(PAPER_GRID)
    extra = {"init_from": ""}
    for key, value in fixed.items():
        if key in grid:
            grid[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        else:
            extra[key] = value
    configs = []
    for arch in grid["arch"]:
        for latent in grid["latent"]:
            for window in grid["window"]:
                for epochs in grid["epochs"]:
                    for split in grid["split"]:
                        configs.append(TrainConfig(arch=arch, latent=latent, window=window, epochs=epochs,
                                                   split=split, **extra))
    return configs
