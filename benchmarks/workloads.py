"""What the benchmarks run: one config table, the model builders and one step of each kind.

Everything here is plain PyTorch/MONAI and knows nothing about pytest or energy, so a step
can be timed standalone (``python -m benchmarks.workloads``).

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

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

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


# -- builders -----------------------------------------------------------------------------------


def build_unet(
    model: UNetConfig, scale: str = "paper", *, device: Any = "cpu", seed: int = 0
) -> Any:
    """A ``DiffusionModelUNet`` for ``model`` at ``scale`` (flash attention on)."""
    import torch
    from monai.networks.nets import DiffusionModelUNet

    cfg = unet_at(model, scale)
    torch.manual_seed(seed)
    with torch.device(device):
        return DiffusionModelUNet(
            spatial_dims=cfg.dims,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            num_res_blocks=cfg.num_res_blocks,
            channels=cfg.channels,
            attention_levels=cfg.attention_levels,
            num_head_channels=cfg.num_head_channels,
            norm_num_groups=cfg.norm_num_groups,
            use_flash_attention=True,  # needed for the large 3D latents (see the notes)
        )


def build_decoder(dims: int, scale: str = "paper", *, device: Any = "cpu", seed: int = 0) -> Any:
    """A VQ-VAE (the VQ-GAN's generator without its discriminator) with random weights."""
    import torch
    from monai.networks.nets import VQVAE

    cfg = decoder_at(dims, scale)
    torch.manual_seed(seed)
    with torch.device(device):
        return VQVAE(
            spatial_dims=dims,
            in_channels=1,
            out_channels=1,
            channels=cfg.channels,
            num_res_channels=cfg.channels,
            num_res_layers=cfg.num_res_layers,
            downsample_parameters=((2, 4, 1, 1),) * 2,
            upsample_parameters=((2, 4, 1, 1, 0),) * 2,
            num_embeddings=cfg.num_embeddings,
            embedding_dim=LATENT_CHANNELS,
        ).eval()


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the system (glibc ``malloc_trim``).

    Freed tensors below glibc's mmap threshold stay in the heap; without the trim the peak
    RSS of a session is its largest workload plus what earlier ones left there.
    """
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def count_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def make_scheduler(kind: str = "ddpm", inference_steps: int = TRAIN_TIMESTEPS) -> Any:
    """DDPM (``inference_steps`` must be 1000, every training level) or DDIM with N steps."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    if kind == "ddpm":
        scheduler = DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, **SCHEDULE)
    elif kind == "ddim":
        scheduler = DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, **SCHEDULE)
    else:
        raise ValueError(f"unknown sampler {kind!r}: expected ddpm or ddim")
    scheduler.set_timesteps(inference_steps)
    return scheduler


# -- one step of each kind ----------------------------------------------------------------------


class TrainStep:
    """One training iteration of the latent diffusion model, as section 2.2 describes.

    The latent batch stands in for the pre-trained VQ-GAN's encoding of a CT crop (the paper
    measured the diffusion model only, not the autoencoder): noise at a random level, predict
    it, mean absolute error, backward, Adam step.
    """

    def __init__(
        self,
        unet: Any,
        latent: tuple[int, ...],
        *,
        batch: int = BATCH_SIZE,
        device: Any = "cpu",
        seed: int = 0,
    ) -> None:
        import torch

        self.torch = torch
        self.unet = unet.train()
        self.scheduler = make_scheduler("ddpm")
        self.optimizer = torch.optim.Adam(unet.parameters(), lr=LEARNING_RATE)
        gen = torch.Generator().manual_seed(seed)
        self.latents = torch.randn((batch, LATENT_CHANNELS, *latent), generator=gen).to(device)
        self.batch = batch
        self.device = device
        self.loss = math.nan

    def __call__(self) -> None:
        torch = self.torch
        z = self.latents
        noise = torch.randn_like(z)
        t = torch.randint(0, TRAIN_TIMESTEPS, (self.batch,), device=self.device).long()
        noisy = self.scheduler.add_noise(original_samples=z, noise=noise, timesteps=t)
        self.optimizer.zero_grad(set_to_none=True)
        prediction = self.unet(noisy, timesteps=t)
        loss = torch.nn.functional.l1_loss(prediction.float(), noise.float())
        loss.backward()
        self.optimizer.step()
        self.loss = float(loss.detach())

    def close(self) -> None:
        """Drop the optimizer state and gradients (the model stays cached for other tests)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer = None  # type: ignore[assignment]
        self.unet.eval()


class DenoiseStep:
    """One reverse-diffusion step: a UNet forward pass and ``scheduler.step``.

    Walks the scheduler's timesteps from the noisiest; wraps around after the last (a step's
    cost does not depend on its timestep).
    """

    def __init__(
        self,
        unet: Any,
        latent: tuple[int, ...],
        kind: str = "ddpm",
        inference_steps: int = TRAIN_TIMESTEPS,
        *,
        batch: int = BATCH_SIZE,
        device: Any = "cpu",
        seed: int = 0,
    ) -> None:
        import torch

        self.torch = torch
        self.unet = unet.eval()
        self.scheduler = make_scheduler(kind, inference_steps)
        self.kind = kind
        self.inference_steps = inference_steps
        gen = torch.Generator().manual_seed(seed)
        self.sample = torch.randn((batch, LATENT_CHANNELS, *latent), generator=gen).to(device)
        self.batch = batch
        self.device = device
        self._i = 0

    def __call__(self) -> None:
        torch = self.torch
        timesteps = self.scheduler.timesteps
        t = int(timesteps[self._i % len(timesteps)])
        self._i += 1
        with torch.inference_mode():
            t_batch = torch.full((self.batch,), t, device=self.device, dtype=torch.long)
            eps = self.unet(self.sample, timesteps=t_batch)
            self.sample, _ = self.scheduler.step(eps, t, self.sample)


class DecodeStep:
    """Decode one synthesized latent batch to images (quantize, then the VQ-VAE decoder)."""

    def __init__(
        self,
        decoder: Any,
        latent: tuple[int, ...],
        *,
        batch: int = BATCH_SIZE,
        device: Any = "cpu",
        seed: int = 0,
    ) -> None:
        import torch

        self.torch = torch
        self.decoder = decoder
        gen = torch.Generator().manual_seed(seed)
        self.latents = torch.randn((batch, LATENT_CHANNELS, *latent), generator=gen).to(device)
        self.image: Any = None

    def __call__(self) -> None:
        with self.torch.inference_mode():
            self.image = self.decoder.decode_stage_2_outputs(self.latents)


# -- standalone timing --------------------------------------------------------------------------


def time_steps(step: Callable[[], None], n: int = 3, warmup: int = 1) -> list[float]:
    """Wall seconds of ``n`` calls after ``warmup`` calls (for planning, not for reports)."""
    import time

    for _ in range(warmup):
        step()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a planning tool
    import argparse

    import torch

    p = argparse.ArgumentParser(description="time one workload standalone")
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("image", choices=sorted(IMAGE_SIZES))
    p.add_argument("--phase", choices=("train", "synth", "decode"), default="train")
    p.add_argument("--scale", choices=SCALES, default="paper")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-n", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    image = IMAGE_SIZES[a.image]
    latent = latent_shape(image, a.scale)
    if a.phase == "decode":
        step: Callable[[], None] = DecodeStep(build_decoder(image.dims, a.scale), latent)
    else:
        unet = build_unet(MODELS[a.model], a.scale)
        step = TrainStep(unet, latent) if a.phase == "train" else DenoiseStep(unet, latent)
    times = time_steps(step, n=a.n)
    print(
        f"{a.model} {a.image} {a.phase} {a.scale} latent {latent}: "
        + ", ".join(f"{t:.3f}" for t in times)
        + " s"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
