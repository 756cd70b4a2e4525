"""What the benchmarks run: one config table and its scales. The models are built in
builders.py and one step of each kind is in steps.py.

All three are plain PyTorch/MONAI and know nothing about pytest or energy, so a step can be
timed standalone (``python -m benchmarks.timing``, timing.py).

The paper (Seyfarth et al., "Latent Pollution Model") does not publish its architectures,
batch size or autoencoder; the configs below follow MONAI's 2D and 3D latent diffusion
tutorials (and the MONAI 3d_ldm training config) and Pinaya et al.'s brain LDM widths, with
small and medium proposals in between. Parameter counts are counted, not copied: ``test_model_size.py::test_param_counts``
rebuilds every model on the meta device and checks the ``params`` column.

Scales
  ``paper``: the true latent shapes (image / 4, 3 latent channels) and the widths below.
  ``smoke``: latent dims / 4 (at least 4 per dim, kept divisible by 4) and widths / 8, so
  that every family runs in seconds. It checks that the code runs, not how costs rank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# -- constants of the study ---------------------------------------------------------------------

LATENT_FACTOR = 4  # image side / latent side (f=4, as MONAI's 2D and 3D LDM tutorials)
LATENT_CHANNELS = 3
#: Samples per training iteration and per synthesized batch. The paper does not state its
#: batch size; 1 keeps the largest 3D configs inside a 2-core machine's time and memory.
BATCH_SIZE = 1
TRAIN_TIMESTEPS = 1000  # DDPM training noise levels (the paper's "1000 steps" sampler too)
PAPER_TRAIN_ITERATIONS = 150_000  # section 2.2: projections to 150k iterations ...
PAPER_SAMPLES = 10_000  # ... and to 10k synthesized samples
LEARNING_RATE = 2.5e-5  # MONAI LDM tutorials; only the cost matters here
#: The MONAI LDM tutorials' "scaled linear" schedule (the paper says it adjusted the
#: variance schedule without saying how; the cost of a step does not depend on it).
SCHEDULE = dict(schedule="scaled_linear_beta", beta_start=0.0015, beta_end=0.0195)

SCALES = ("paper", "smoke")
SMOKE_LATENT_DIVISOR = 4
SMOKE_WIDTH_DIVISOR = 8
PAPER_NORM_GROUPS = 32  # MONAI's default GroupNorm groups
SMOKE_NORM_GROUPS = 8


# -- the config table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UNetConfig:
    """A DiffusionModelUNet (3 levels; attention where ``attention_levels`` is True)."""

    key: str  # "2d-medium"
    dims: int
    size: str  # "small" | "medium" | "large"
    channels: tuple[int, ...]
    num_res_blocks: int
    attention_levels: tuple[bool, ...]
    num_head_channels: tuple[int, ...]  # per level; 0 where there is no attention
    params: int  # trainable parameters at paper scale (counted; see module docstring)
    origin: str
    norm_num_groups: int = PAPER_NORM_GROUPS

    @property
    def params_m(self) -> str:
        return f"{self.params / 1e6:.1f} M"


F, T = False, True
MODELS: dict[str, UNetConfig] = {
    m.key: m
    for m in (
        UNetConfig(
            "2d-small",
            2,
            "small",
            (64, 128, 256),
            1,
            (F, F, T),
            (0, 0, 256),
            10_917_827,
            "reference proposal",
        ),
        UNetConfig(
            "2d-medium",
            2,
            "medium",
            (128, 256, 512),
            2,
            (F, T, T),
            (0, 256, 512),
            64_143_619,
            "MONAI 2D LDM tutorial",
        ),
        UNetConfig(
            "2d-large",
            2,
            "large",
            (256, 512, 768),
            2,
            (F, T, T),
            (0, 512, 768),
            171_254_787,
            "Pinaya et al. brain LDM widths",
        ),
        UNetConfig(
            "3d-small",
            3,
            "small",
            (32, 64, 64),
            1,
            (F, T, T),
            (0, 64, 64),
            2_974_051,
            "MONAI 3D LDM tutorial",
        ),
        UNetConfig(
            "3d-medium",
            3,
            "medium",
            (64, 128, 256),
            2,
            (F, T, T),
            (0, 64, 64),
            41_646_979,
            "reference proposal",
        ),
        UNetConfig(
            "3d-large",
            3,
            "large",
            (256, 256, 512),
            2,
            (F, T, T),
            (0, 64, 64),
            191_161_347,
            "MONAI 3d_ldm training config",
        ),
    )
}
MODEL_SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class ImageSize:
    """An image size of the study; the diffusion model works on its latent (image / 4)."""

    key: str  # "2d-256"
    shape: tuple[int, ...]  # image voxels, spatial only

    @property
    def dims(self) -> int:
        return len(self.shape)

    @property
    def label(self) -> str:
        """``256²``, ``192³``, ``256²×192`` as the paper writes them."""
        return shape_label(self.shape)


IMAGE_SIZES: dict[str, ImageSize] = {
    i.key: i
    for i in (
        ImageSize("2d-192", (192, 192)),
        ImageSize("2d-256", (256, 256)),
        ImageSize("2d-320", (320, 320)),
        ImageSize("2d-512", (512, 512)),
        ImageSize("3d-64", (64, 64, 64)),
        ImageSize("3d-128", (128, 128, 128)),
        ImageSize("3d-192", (192, 192, 192)),
        ImageSize("3d-256x256x192", (256, 256, 192)),
    )
}


@dataclass(frozen=True)
class DecoderConfig:
    """The autoencoder whose decoder turns a synthesized latent into an image (random weights).

    The paper used a pre-trained VQ-GAN and analysed the diffusion model only; we include one
    decode per sample so that a "sample" is a whole image, and keep the decoder small (its
    cost is a few percent of one sample's 1000 UNet steps).
    """

    dims: int
    channels: tuple[int, int]  # two levels of stride-2 up-sampling: f = 4
    num_res_layers: int = 1
    num_embeddings: int = 256


DECODERS = {2: DecoderConfig(2, (64, 128)), 3: DecoderConfig(3, (32, 64))}

#: Image-size family (Fig. 1) and model-size family (Fig. 2) use these.
IMAGE_SIZE_MODEL = "medium"
MODEL_SIZE_IMAGES = {2: "2d-256", 3: "3d-192"}  # section 3.2
#: Fig. 3 renders one 3D measurement for every region and month: the model-size family's 3D
#: image (192³), medium model, measured by the image-size family.
REGION_SOURCE = ("3d-medium", "3d-192")
#: Fig. 4 ("3D LDM", size not published). 64³ keeps the DDP run (two processes of one
#: thread each) and the five samplers affordable on two cores.
DISTRIBUTED_CONFIG = ("3d-medium", "3d-64")
INFERENCE_CONFIG = ("3d-medium", "3d-64")
SAMPLERS = (("ddpm", 1000), ("ddim", 500), ("ddim", 200), ("ddim", 100), ("ddim", 50))


def model_for(dims: int, size: str) -> UNetConfig:
    return MODELS[f"{dims}d-{size}"]


# -- scaling ------------------------------------------------------------------------------------


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}")
    return scale


def latent_shape(image: ImageSize, scale: str = "paper") -> tuple[int, ...]:
    """Spatial latent shape: image / 4; at smoke scale / 4 again (>= 4, divisible by 4)."""
    check_scale(scale)
    shape = tuple(s // LATENT_FACTOR for s in image.shape)
    if scale == "smoke":
        shape = tuple(max(4, (s // SMOKE_LATENT_DIVISOR) // 4 * 4) for s in shape)
    return shape


def shape_label(shape: tuple[int, ...]) -> str:
    """``256²``, ``192³``, ``256²×192`` as the paper writes image sizes."""
    if len(set(shape)) == 1:
        return f"{shape[0]}{'²' if len(shape) == 2 else '³'}"
    return f"{shape[0]}²×{shape[2]}"


def scaled_label(image: ImageSize, scale: str = "paper") -> str:
    """The image as run at ``scale``: ``192³``, or ``smoke 48³ (192³/4, w/8)`` (dims / 4,
    widths / 8), so that smoke rows do not carry the paper's shapes as their own."""
    if check_scale(scale) == "paper":
        return image.label
    small = shape_label(image_shape(image, scale))
    return f"smoke {small} ({image.label}/{SMOKE_LATENT_DIVISOR}, w/{SMOKE_WIDTH_DIVISOR})"


def image_shape(image: ImageSize, scale: str = "paper") -> tuple[int, ...]:
    """The decoded image's spatial shape at ``scale`` (latent x 4)."""
    return tuple(s * LATENT_FACTOR for s in latent_shape(image, scale))


def _smoke_width(c: int) -> int:
    return max(8, (c // SMOKE_WIDTH_DIVISOR) // 8 * 8)


def unet_at(model: UNetConfig, scale: str = "paper") -> UNetConfig:
    """The config actually built at ``scale`` (smoke: widths / 8, multiples of 8, >= 8)."""
    check_scale(scale)
    if scale == "paper":
        return model
    channels = tuple(_smoke_width(c) for c in model.channels)
    heads = []
    for c, paper_h in zip(channels, model.num_head_channels, strict=False):
        h = _smoke_width(paper_h) if paper_h else 0
        heads.append(h if h == 0 or c % h == 0 else c)
    return replace(
        model,
        channels=channels,
        num_head_channels=tuple(heads),
        norm_num_groups=SMOKE_NORM_GROUPS,
        params=0,
    )


def decoder_at(dims: int, scale: str = "paper") -> DecoderConfig:
    cfg = DECODERS[dims]
    if check_scale(scale) == "smoke":
        cfg = replace(cfg, channels=(8, 16), num_embeddings=32)
    return cfg
