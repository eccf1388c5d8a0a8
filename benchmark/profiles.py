"""Compute profiles and method presets, as data.

A *profile* says how big a run is (backbone, input size, batch, epochs, optimisers,
initialisation, LR synthesis); a *method* says what is trained (CAD-Net variant, loss
switches and weights, heads, normalisation). :func:`make_config` merges the two (method
fields override profile fields where the method sets them, then explicit overrides win)
into one flat, frozen :class:`CADNetConfig` that the model, the losses and the engine read,
and that runs record with :meth:`CADNetConfig.to_dict`.

Profiles
--------
``paper``  ResNet-50 E and F, 256 x 128, batch 32 (8 ids x 4 images) HR + 32 LR,
           SGD lr 1e-3 / momentum 0.9 / wd 5e-4 for E, G, F, C and lr 1e-4 for D_F and D_I
           (paper section 4.1), ImageNet init, 60 epochs (the paper gives no epoch count:
           our choice), LR rates {2, 3, 4}, antialiased bilinear down-sampling.
``cpu``    ResNet-18 E and F at 128 x 64, batch 32 + 32, narrower G (width 16) / D_F (32) /
           D_I (ResNet-18 at width 16), random init, 25 epochs (500 steps on MLR-VIPeR's 632
           HR training images, sized from a measured step); discriminators (CAD-Net's D_F,
           the baselines' discriminators) trained with Adam(1e-4, betas 0.9/0.99, no weight
           decay) as in Tsai et al. and the authors' code, because D_F does not learn under
           the paper's SGD 1e-4 at this budget. CAD-Net's D_I keeps the paper's SGD in every
           profile (``PAPER_DI_OPTIM`` in the CAD-Net presets). The measurements behind
           these choices: ``results/reference/cpu-viper-scratch/NOTES.md``, "Design measurements
           behind the code".
``smoke``  a tiny ResNet-ish trunk (BasicBlock [1, 1, 1, 1], width 8, d = 64) at 64 x 32,
           batch 16 + 16, 2 epochs: seconds.

Methods
-------
``cadnet`` (v = [f, g], paper), ``cadnet-f`` (C sees f only), ``cadnet-g`` (C sees g
only), the Table 3 ablations ``cadnet-no-adv-di``, ``cadnet-no-adv-df``, ``cadnet-no-rec``,
``cadnet-no-cls``, and ``authors-code`` (choices of the authors' earlier public code, see
the README section "What the authors' code did"; every difference from ``cadnet`` is listed
in that preset's description).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class OptimSpec:
    """One optimiser: ``name`` "sgd" (uses momentum) or "adam" (uses betas)."""

    name: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adam"):
            raise ValueError(f"unknown optimiser {self.name!r}; known: sgd, adam")


@dataclass(frozen=True)
class Profile:
    """How big a run is. See the module docstring for the three built-in profiles."""

    name: str
    backbone: str  # E and F trunk: resnet50 | resnet18 | mobilenetv2 | tiny (models/backbones.py)
    backbone_width: int = 64  # 64 = torchvision widths (needed for ImageNet weights)
    last_stride: int = 2
    input_size: tuple[int, int] = (256, 128)  # (H, W)
    ids_per_batch: int = 8  # P
    instances_per_id: int = 4  # K; HR batch = P * K
    lr_batch_size: int | None = None  # LR batch size; None = same as the HR batch
    epochs: int = 60
    model_optim: OptimSpec = field(default_factory=OptimSpec)
    disc_optim: OptimSpec = field(
        default_factory=lambda: OptimSpec("sgd", lr=1e-4, momentum=0.9, weight_decay=5e-4)
    )
    pretrained: str = "imagenet"  # imagenet | none
    lr_rates: tuple[int, ...] = (2, 3, 4)
    lr_method: str = "bilinear"  # antialiased bilinear down-sampling, then bilinear up
    seed: int = 0
    decoder_width: int = 32  # G base width (models/decoder.py)
    df_width: int = 64  # Tsai D_F base width
    di_width: int = 64  # D_I ResNet-18 width (64 = ResNet-18)
    description: str = ""

    @property
    def batch_size(self) -> int:
        return self.ids_per_batch * self.instances_per_id


@dataclass(frozen=True)
class Method:
    """What is trained. ``None`` fields inherit the profile's value."""

    name: str
    feature_mode: str = "fg"  # fg: v = [f, g] | f: v = f | g: v = g
    use_adv_di: bool = True
    use_adv_df: bool = True
    use_rec: bool = True
    use_cls: bool = True
    lambda_id: float = 1.0
    lambda_tri: float = 1.0
    lambda_rec: float = 1.0
    lambda_adv_df: float = 1.0
    lambda_adv_di: float = 1.0
    triplet_margin: float = 2.0
    triplet_normalize: bool = False  # L2-normalise the embedding before the triplet loss
    reid_grad_to_g: float = 1.0  # scale of L_cls's gradient into G through F (1: the paper)
    decoder_residual: bool = False  # G adds a zero-initialised correction to its input
    decoder_skips: bool = True  # G concatenates E's taps before each up-sampling (paper)
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    bn_neck: bool = False
    l2_test_features: bool = False
    df_variant: str = "tsai"  # tsai | authors
    decoder_block: str = "resblock"  # resblock | deconv
    di_imagenet: bool = False  # D_I trunk from ImageNet ResNet-18 when pretrained=imagenet
    joint_forward: bool = True  # HR and LR batches through E/G/F as one batch (shared BN stats)
    disc_optim: OptimSpec | None = None
    di_optim: OptimSpec | None = None  # CAD-Net's D_I only; None: disc_optim
    gen_optim: OptimSpec | None = None  # a baseline's SR nets, CAD-Net's G; None: model_optim
    lr_method: str | None = None
    #: learning rate of E, G, F and C (the profile's ``model_optim`` otherwise unchanged);
    #: None: the profile's
    model_lr: float | None = None
    description: str = ""


#: fields left out of :meth:`CADNetConfig.to_dict` at these values (configs that do not use
#: them keep the dict, and so the cache keys, they had before the fields existed)
OMITTED_AT = {"di_optim": None, "gen_optim": None, "reid_grad_to_g": 1.0,
              "decoder_residual": False, "decoder_skips": True}


@dataclass(frozen=True)
class CADNetConfig:
    """Everything a CAD-Net run needs: merged profile + method (+ overrides). Frozen; use
    ``dataclasses.replace`` or :func:`make_config` overrides to change a field."""

    profile: str
    method: str
    # model
    backbone: str
    backbone_width: int
    last_stride: int
    input_size: tuple[int, int]
    pretrained: str
    feature_mode: str
    decoder_width: int
    decoder_block: str
    df_variant: str
    df_width: int
    di_width: int
    di_imagenet: bool
    bn_neck: bool
    l2_test_features: bool
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    # losses
    use_adv_di: bool
    use_adv_df: bool
    use_rec: bool
    use_cls: bool
    lambda_id: float
    lambda_tri: float
    lambda_rec: float
    lambda_adv_df: float
    lambda_adv_di: float
    triplet_margin: float
    triplet_normalize: bool
    joint_forward: bool
    # training / data
    ids_per_batch: int
    instances_per_id: int
    lr_batch_size: int | None
    epochs: int
    model_optim: OptimSpec
    disc_optim: OptimSpec
    lr_rates: tuple[int, ...]
    lr_method: str
    seed: int
    num_classes: int = 0  # set from the training split (make_config(..., num_classes=N))
    di_optim: OptimSpec | None = None  # D_I's optimiser; None: disc_optim (as D_F)
    #: optimiser of a baseline's SR/translation networks (``sr_parameters()``) or of
    #: CAD-Net's G; None: they are updated with ``model_optim`` with the re-ID network
    gen_optim: OptimSpec | None = None
    #: CAD-Net's loss balance beyond the lambdas (see the Method fields of the same names)
    reid_grad_to_g: float = 1.0
    decoder_residual: bool = False
    decoder_skips: bool = True

    def __post_init__(self) -> None:
        checks = {
            "feature_mode": ("fg", "f", "g"),
            "pretrained": ("imagenet", "none"),
            "df_variant": ("tsai", "authors"),
            "decoder_block": ("resblock", "deconv"),
        }
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected one of {allowed}")

    @property
    def batch_size(self) -> int:
        """HR images per step (P x K)."""
        return self.ids_per_batch * self.instances_per_id

    @property
    def lr_batch(self) -> int:
        """LR images per step."""
        return self.lr_batch_size or self.batch_size

    @property
    def lambdas(self) -> dict[str, float]:
        """Eq. 6 weights by loss name (Eq. 4's L_cls = lambda_id L_id + lambda_tri L_tri)."""
        return {"id": self.lambda_id, "tri": self.lambda_tri, "rec": self.lambda_rec,
                "adv_df": self.lambda_adv_df, "adv_di": self.lambda_adv_di}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (optimisers as nested dicts, tuples as lists)."""

        def conv(v: Any) -> Any:
            if isinstance(v, OptimSpec):
                return {f.name: conv(getattr(v, f.name)) for f in fields(v)}
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            return v

        # optional optimisers only where set: configs that do not use them keep the dict,
        # and so the cache keys, they had before the fields existed
        return {f.name: conv(getattr(self, f.name)) for f in fields(self)
                if not (f.name in OMITTED_AT and getattr(self, f.name) == OMITTED_AT[f.name])}

    @property
    def image_disc_optim(self) -> OptimSpec:
        """The optimiser of D_I: ``di_optim`` if set, else ``disc_optim``."""
        return self.di_optim or self.disc_optim


# ---------------------------------------------------------------------------------------
# built-in profiles

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="paper",
            backbone="resnet50",
            input_size=(256, 128),
            epochs=60,
            pretrained="imagenet",
            decoder_width=32,
            df_width=64,
            di_width=64,
            description="paper section 4.1: ResNet-50, 256x128, batch 32, SGD 1e-3 / D 1e-4; "
            "60 epochs is our choice (not given in the paper)",
        ),
        Profile(
            name="cpu",
            backbone="mobilenetv2",
            input_size=(128, 64),
            epochs=25,
            pretrained="imagenet",
            decoder_width=16,
            df_width=32,
            di_width=16,
            disc_optim=OptimSpec("adam", lr=1e-4, momentum=0.0, weight_decay=0.0,
                                 betas=(0.9, 0.99)),
            description="MobileNetV2 E and F from ImageNet (the pinned file: "
            "benchmark.weights) at 128x64, narrow G/D, Adam 1e-4 for D_F; 25 epochs x 20 "
            "steps on real MLR-VIPeR",
        ),
        Profile(
            name="smoke",
            backbone="tiny",
            backbone_width=8,
            input_size=(64, 32),
            ids_per_batch=4,
            instances_per_id=4,
            epochs=2,
            pretrained="none",
            decoder_width=8,
            df_width=8,
            di_width=8,
            disc_optim=OptimSpec("adam", lr=1e-4, momentum=0.0, weight_decay=0.0,
                                 betas=(0.9, 0.99)),
            description="tiny ResNet-ish (width 8) at 64x32, batch 16, Adam 1e-4 for D_F/D_I "
            "(as cpu): seconds",
        ),
    )
}
#: the cpu profile of the earlier, from-scratch reference results (ResNet-18, random init)
PROFILES["cpu-scratch"] = replace(
    PROFILES["cpu"], name="cpu-scratch", backbone="resnet18", pretrained="none",
    description="ResNet-18 E and F at 128x64 from random weights, narrow G/D, Adam 1e-4 for "
    "D_F; the cpu profile of the from-scratch reference results")


# ---------------------------------------------------------------------------------------
# built-in methods

_AUTHORS_NOTE = (
    "authors' earlier code choices (README: What the authors' code did): loss weights id 1, "
    "triplet 10, rec 1, feature-adversarial 0.01 (image-adversarial weight not recorded there: "
    "kept at 1); L2-normalised triplet embedding; max-pool LR down-sampling; Adam(1e-4, betas "
    "0.9/0.99, no weight decay) for D_F and D_I; pixel mean = std = 0.5; BN neck; "
    "L2-normalised test features; six-conv BN D_F; transposed-conv decoder stages; D_I from "
    "ImageNet ResNet-18 when pretrained=imagenet"
)

# D_I's optimiser in every paper-following CAD-Net preset: the paper's SGD lr 1e-4 (with the
# engine's momentum 0.9 / wd 5e-4), whatever the profile's disc_optim (Adam for D_F in the
# cpu profile): under Adam, D_I overpowered G (measurements: reference NOTES.md).
PAPER_DI_OPTIM = OptimSpec("sgd", lr=1e-4, momentum=0.9, weight_decay=5e-4)

#: CAD-Net's loss balance in every profile, chosen on a validation split of MLR-VIPeR's
#: training identities (results/reference/cpu-profile-validation/NOTES.md): L_cls's
#: gradient into G through F scaled by 0.01, G correcting its (up-sampled) input,
#: lambda_rec 10 and E/G/F/C at lr 5e-4 (the triplet is the paper's: raw GAP(v), margin
#: 2). Validation rank-1 29.7 (lr-aug 26.7), recovered PSNR 21.47 dB (bilinear input
#: 21.36); the paper's literal balance (``cadnet-paper-balance``) collapsed at 4.7 / 6.1 dB.
VALIDATED_BALANCE = dict(reid_grad_to_g=0.01, decoder_residual=True, lambda_rec=10.0,
                         model_lr=5e-4, di_optim=PAPER_DI_OPTIM)

#: G's optimiser in ``cadnet-adam-g`` (a deviation: the paper trains G with SGD). On the
#: validation split G ends 1.05 dB above its input (SGD: 0.11) at rank-1 27.0 (SGD: 29.7).
ADAM_G = OptimSpec("adam", lr=2e-4, momentum=0.0, weight_decay=0.0, betas=(0.9, 0.999))

#: CAD-Net's variants: each is registered as a method (``benchmark.tasks.CADNetTask``)
CADNET_PRESETS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("cadnet", **VALIDATED_BALANCE,
               description="CAD-Net: v = [f, g], all lambdas 1, the validated balance"),
        Method("cadnet-f", feature_mode="f", **VALIDATED_BALANCE,
               description="Table 1 'Ours (f only)': C and the test feature use f only"),
        Method("cadnet-g", feature_mode="g", **VALIDATED_BALANCE,
               description="Table 1 'Ours (g only)': C and the test feature use g only"),
        Method("cadnet-no-adv-di", use_adv_di=False, **VALIDATED_BALANCE,
               description="Table 3: w/o L_adv^{D_I}"),
        Method("cadnet-no-adv-df", use_adv_df=False, **VALIDATED_BALANCE,
               description="Table 3: w/o L_adv^{D_F}"),
        Method("cadnet-no-rec", use_rec=False, **VALIDATED_BALANCE,
               description="Table 3: w/o L_rec"),
        Method("cadnet-no-cls", use_cls=False, **VALIDATED_BALANCE,
               description="Table 3: w/o L_cls"),
        Method("cadnet-adam-g", gen_optim=ADAM_G, **VALIDATED_BALANCE,
               description="CAD-Net with G under Adam 2e-4 (E, F, C: SGD); a deviation"),
        Method("cadnet-paper-balance", di_optim=PAPER_DI_OPTIM,
               description="CAD-Net with the paper's literal balance: triplet on the raw "
               "GAP(v) with margin 2, L_cls reaching G in full, G's output (tanh + 1) / 2"),
        Method(
            "authors-code",
            lambda_id=1.0,
            lambda_tri=10.0,
            lambda_rec=1.0,
            lambda_adv_df=0.01,
            lambda_adv_di=1.0,
            triplet_normalize=True,
            pixel_mean=HALF,
            pixel_std=HALF,
            bn_neck=True,
            l2_test_features=True,
            df_variant="authors",
            decoder_block="deconv",
            di_imagenet=True,
            disc_optim=OptimSpec("adam", lr=1e-4, momentum=0.0, weight_decay=0.0,
                                 betas=(0.9, 0.99)),
            lr_method="maxpool",
            description=_AUTHORS_NOTE,
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The built-in profile ``name``; ValueError listing the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}") from None


def get_preset(name: str) -> Method:
    """The CAD-Net preset ``name``; ValueError listing the known ones otherwise."""
    try:
        return CADNET_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown CAD-Net preset {name!r}; known: "
                         f"{', '.join(CADNET_PRESETS)}") from None


def make_config(
    profile: str | Profile = "cpu", method: str | Method = "cadnet", **overrides: Any
) -> CADNetConfig:
    """Merge a profile and a method into a :class:`CADNetConfig`.

    Precedence: explicit ``overrides`` > method fields that are set (not None) > profile.
    Unknown override names raise ValueError listing the valid fields.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    meth = get_preset(method) if isinstance(method, str) else method
    values: dict[str, Any] = {"profile": prof.name, "method": meth.name}
    skip = {"name", "description"}
    for f in fields(prof):
        if f.name not in skip:
            values[f.name] = getattr(prof, f.name)
    for f in fields(meth):
        v = getattr(meth, f.name)
        if f.name not in skip | {"model_lr"} and v is not None:
            values[f.name] = v
    if meth.model_lr is not None:
        values["model_optim"] = replace(values["model_optim"], lr=meth.model_lr)
    valid = {f.name for f in fields(CADNetConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown}; valid: {', '.join(sorted(valid))}")
    values.update(overrides)
    return CADNetConfig(**values)


__all__ = [
    "CADNetConfig",
    "HALF",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CADNET_PRESETS",
    "Method",
    "PAPER_DI_OPTIM",
    "VALIDATED_BALANCE",
    "OptimSpec",
    "PROFILES",
    "Profile",
    "get_preset",
    "get_profile",
    "make_config",
]
