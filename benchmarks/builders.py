"""The benchmarks' models (MONAI's diffusion U-Net and VQ-VAE decoder at a config's scale), the
noise schedulers, and handing freed memory back to the OS between workloads. torch and
MONAI are imported when a model is built."""

from __future__ import annotations

from typing import Any

from .workloads import LATENT_CHANNELS, SCHEDULE, TRAIN_TIMESTEPS, UNetConfig, decoder_at, unet_at


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
