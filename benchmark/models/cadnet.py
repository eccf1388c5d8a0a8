"""CAD-Net (Li et al., ICCV 2019): E, G, F, C, D_F, D_I and the module tying them together.

Image value convention
----------------------
Every image tensor that enters or leaves the model is RGB in **[0, 1]** (B, 3, H, W):
inputs x_H / x_L, the recovered image G(E(x)) (``(tanh + 1) / 2``) and the HR ground truth
that L_rec compares with. The encoders E and F and the image discriminator D_I normalise
their input internally with ``config.pixel_mean`` / ``config.pixel_std`` (ImageNet
statistics by default, 0.5 / 0.5 in the ``authors-code`` preset). So L_rec is an L1 in
[0, 1] units (half the value the same error has in [-1, 1] units).

Variants (``config.feature_mode``)
----------------------------------
``fg`` (paper): v = [f, g], u = GAP(v) is 2d-dimensional. ``f`` (Table 1 "Ours (f only)"):
v = f; F is not built and C never sees the recovered image, so L_id/L_tri do not reach G.
``g`` ("Ours (g only)"): v = g = F(G(E(x))). In every mode G is trained by L_rec and
L_adv^{D_I} and E by L_adv^{D_F}; both discriminators are always built (so checkpoints of
all variants share a layout) and only stepped when their loss is enabled.

Memory format: every module works with ``model.to(memory_format=torch.channels_last)`` and
channels-last inputs (faster on CPU too: reference NOTES.md); there are no in-place
operations on tensors autograd needs (torchvision's in-place ReLUs are safe).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.profiles import CADNetConfig, OptimSpec

from .backbones import build_trunk, load_imagenet
from .decoder import HRDecoder, scale_grad
from .discriminators import ImageDiscriminator, build_feature_discriminator


class _Normalize(nn.Module):
    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class CrossResolutionEncoder(nn.Module):
    """E: images in [0, 1] (any resolution, resized to H x W) -> f (B, d, h, w) and the skip
    taps {2: conv1/relu, 4: layer1, 8: layer2, 16: layer3} (keyed by stride) for G."""

    def __init__(self, arch: str, width: int = 64, last_stride: int = 2,
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> None:
        super().__init__()
        self.normalize = _Normalize(mean, std)
        self.trunk = build_trunk(arch, width, last_stride)
        self.out_channels = self.trunk.out_channels
        self.out_stride = self.trunk.out_stride
        self.tap_channels = dict(self.trunk.tap_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        return self.trunk.forward_with_taps(self.normalize(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f only (no taps)."""
        return self.trunk(self.normalize(x))


class HREncoder(nn.Module):
    """F: recovered HR image in [0, 1] -> g (B, d, h, w); a separate trunk (no sharing with E)."""

    def __init__(self, arch: str, width: int = 64, last_stride: int = 2,
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> None:
        super().__init__()
        self.normalize = _Normalize(mean, std)
        self.trunk = build_trunk(arch, width, last_stride)
        self.out_channels = self.trunk.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.normalize(images))


class Classifier(nn.Module):
    """C: GAP over each map of v, concatenated (= GAP(v)), then FC (softmax in the loss).

    ``bn_neck=True`` inserts BatchNorm1d (bias frozen) between GAP and FC (authors-code
    preset, BoT style); the embedding returned for the triplet loss and the test feature
    are always the pre-neck GAP(v).
    """

    def __init__(self, in_dim: int, num_classes: int, bn_neck: bool = False) -> None:
        super().__init__()
        self.neck: nn.Module
        if bn_neck:
            self.neck = nn.BatchNorm1d(in_dim)
            self.neck.bias.requires_grad_(False)
        else:
            self.neck = nn.Identity()
        self.fc = nn.Linear(in_dim, num_classes, bias=not bn_neck)
        nn.init.normal_(self.fc.weight, std=0.001)
        if self.fc.bias is not None:
            nn.init.zeros_(self.fc.bias)

    @staticmethod
    def pool(maps: list[torch.Tensor]) -> torch.Tensor:
        """u = GAP([m1, m2, ...]) = [GAP(m1), GAP(m2), ...]."""
        return torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)

    def forward(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.pool(maps)
        return emb, self.fc(self.neck(emb))


@dataclass
class CADNetOutput:
    """What :meth:`CADNet.forward` returns (fields not requested are None).

    f: E(x), (B, d, h, w). taps: E's skip maps. recovered: G(E(x)) in [0, 1], (B, 3, H, W).
    g: F(recovered), (B, d, h, w) (None in feature_mode "f"). embedding: GAP(v), the triplet
    feature (B, dim(v)). logits: C(v), (B, num_classes).
    """

    f: torch.Tensor
    recovered: torch.Tensor | None = None
    g: torch.Tensor | None = None
    embedding: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class CADNet(nn.Module):
    """Cross-resolution Adversarial Dual Network.

    Submodules (paper names): ``encoder`` E, ``decoder`` G, ``hr_encoder`` F (None in
    feature_mode "f"), ``classifier`` C, ``feature_discriminator`` D_F,
    ``image_discriminator`` D_I. ``init`` is "imagenet" or "random" (E and F);
    ``init_record`` gives it per component; ``init_weights`` is ``{"file": ...,
    "sha256": ...}`` of the checkpoint E and F were initialised from (None for random init;
    D_I's, if any, is ``image_discriminator.init_weights``). ``feature_dim`` is d,
    ``embedding_dim`` the size of u, ``feature_hw`` (h, w).
    """

    def __init__(self, config: CADNetConfig, num_classes: int | None = None) -> None:
        super().__init__()
        num_classes = config.num_classes if num_classes is None else num_classes
        if num_classes <= 0:
            raise ValueError("num_classes must be positive (number of training identities)")
        self.config = config
        self.num_classes = num_classes
        self.feature_mode = config.feature_mode
        arch, width, ls = config.backbone, config.backbone_width, config.last_stride
        mean, std = tuple(config.pixel_mean), tuple(config.pixel_std)
        H, W = config.input_size

        self.encoder = CrossResolutionEncoder(arch, width, ls, mean, std)
        d, stride = self.encoder.out_channels, self.encoder.out_stride
        if H % stride or W % stride:
            raise ValueError(f"input size {H}x{W} must be divisible by the trunk stride {stride}")
        self.feature_dim = d
        self.feature_hw = (H // stride, W // stride)
        taps = self.encoder.tap_channels if config.decoder_skips else {}
        self.decoder = HRDecoder(d, stride, taps, config.decoder_width,
                                 config.decoder_block, residual=config.decoder_residual)
        self.hr_encoder = (HREncoder(arch, width, ls, mean, std)
                           if self.feature_mode != "f" else None)
        self.embedding_dim = 2 * d if self.feature_mode == "fg" else d
        self.descriptor_dim = self.embedding_dim  # the test feature u = GAP(v)
        self.classifier = Classifier(self.embedding_dim, num_classes, config.bn_neck)
        self.feature_discriminator = build_feature_discriminator(
            config.df_variant, d, self.feature_hw, config.df_width)
        want_di_imagenet = config.di_imagenet and config.pretrained == "imagenet"
        self.image_discriminator = ImageDiscriminator(config.di_width, mean, std,
                                                      imagenet=want_di_imagenet)

        self.init = "random"
        self.init_weights: dict[str, str] | None = None
        if config.pretrained == "imagenet":
            self.init_weights = load_imagenet(self.encoder.trunk, arch, width)
            if self.hr_encoder is not None:
                load_imagenet(self.hr_encoder.trunk, arch, width)
            self.init = "imagenet"
        self.init_record = {
            "E": self.init,
            "F": self.init if self.hr_encoder is not None else "absent",
            "G": "random",
            "C": "random",
            "D_F": "random",
            "D_I": self.image_discriminator.init,
        }

    # ---- parameter groups -------------------------------------------------------------
    def generator_modules(self) -> list[nn.Module]:
        """E, G, F, C: everything the main (Eq. 6) optimiser updates."""
        mods = [self.encoder, self.decoder, self.hr_encoder, self.classifier]
        return [m for m in mods if m is not None]

    def generator_parameters(self):
        for m in self.generator_modules():
            yield from m.parameters()

    # ---- forward ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, recover: bool = True, classify: bool = True) -> CADNetOutput:
        """Training forward on images in [0, 1].

        ``recover``: compute G(E(x)) even if C does not need it (mode "f").
        ``classify``: compute g (modes fg/g), the embedding GAP(v) and C's logits.
        """
        need_g = classify and self.feature_mode != "f"
        need_img = recover or need_g
        if need_img:
            f, taps = self.encoder(x)
            recovered = self.decoder(f, taps, x)
        else:
            f, recovered = self.encoder.features(x), None
        # L_cls reaches G through F scaled by reid_grad_to_g (1: the paper)
        g = (self.hr_encoder(scale_grad(recovered, self.config.reid_grad_to_g))
             if need_g else None)
        out = CADNetOutput(f=f, recovered=recovered, g=g)
        if classify:
            out.embedding, out.logits = self.classifier(self._v_maps(f, g))
        return out

    def _v_maps(self, f: torch.Tensor, g: torch.Tensor | None) -> list[torch.Tensor]:
        if self.feature_mode == "fg":
            return [f, g]
        return [f] if self.feature_mode == "f" else [g]

    @torch.no_grad()
    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Test feature u = GAP(v) (B, embedding_dim), L2-normalised iff
        ``config.l2_test_features``. Call ``model.eval()`` first."""
        if self.feature_mode == "f":
            f, g = self.encoder.features(x), None
        else:
            f, taps = self.encoder(x)
            g = self.hr_encoder(self.decoder(f, taps, x))
        u = Classifier.pool(self._v_maps(f, g))
        return F.normalize(u, dim=1) if self.config.l2_test_features else u

    @torch.no_grad()
    def recover(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)): recovered HR images in [0, 1]. Call ``model.eval()`` first."""
        f, taps = self.encoder(x)
        return self.decoder(f, taps, x)

    def parameter_counts(self) -> dict[str, int]:
        """Number of parameters per component (paper names) and in total."""
        comps = {"E": self.encoder, "G": self.decoder, "F": self.hr_encoder,
                 "C": self.classifier, "D_F": self.feature_discriminator,
                 "D_I": self.image_discriminator}
        out = {k: sum(p.numel() for p in m.parameters()) if m is not None else 0
               for k, m in comps.items()}
        out["total"] = sum(out.values())
        return out


def make_optimizer(params, spec: OptimSpec) -> torch.optim.Optimizer:
    """SGD (lr, momentum, weight_decay) or Adam (lr, betas, weight_decay) from an OptimSpec."""
    params = [p for p in params if p.requires_grad]
    if spec.name == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                               weight_decay=spec.weight_decay)
    return torch.optim.Adam(params, lr=spec.lr, betas=tuple(spec.betas),
                            weight_decay=spec.weight_decay)


def make_split_optimizers(params, own, own_spec: OptimSpec | None, spec: OptimSpec
                          ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    """``(rest, own)``: with ``own_spec`` set, the parameters of ``params`` that are in
    ``own`` (a sub-network: an SR net, CAD-Net's G) get their own optimiser and the rest
    ``spec``'s; without it, one optimiser over all of ``params`` and ``None``."""
    params = list(params)
    if own_spec is None:
        return make_optimizer(params, spec), None
    ids = {id(p) for p in own}
    return (make_optimizer([p for p in params if id(p) not in ids], spec),
            make_optimizer([p for p in params if id(p) in ids], own_spec))


def build_optimizers(model: CADNet, config: CADNetConfig | None = None
                     ) -> dict[str, torch.optim.Optimizer]:
    """``{"model": ..., "d_f": ..., "d_i": ...}``: ``model_optim`` over E, G, F, C;
    ``disc_optim`` for D_F and ``image_disc_optim`` (``di_optim``, else ``disc_optim``) for
    D_I, each only when its adversarial loss is enabled (else absent: never stepped).
    With ``gen_optim`` set (a deviation; the paper uses one SGD), G gets its own optimiser
    ``"g"`` and ``"model"`` keeps E, F, C."""
    cfg = config or model.config
    main, g = make_split_optimizers(model.generator_parameters(), model.decoder.parameters(),
                                    cfg.gen_optim, cfg.model_optim)
    opts = {"model": main} if g is None else {"model": main, "g": g}
    if cfg.use_adv_df:
        opts["d_f"] = make_optimizer(model.feature_discriminator.parameters(), cfg.disc_optim)
    if cfg.use_adv_di:
        opts["d_i"] = make_optimizer(model.image_discriminator.parameters(), cfg.image_disc_optim)
    return opts
