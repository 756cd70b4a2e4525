"""One step of each kind the benchmarks measure: a training iteration, a denoising step and a
decode, on random latents (torch is imported when a step is made)."""

from __future__ import annotations

import math
from typing import Any

from .builders import make_scheduler
from .workloads import BATCH_SIZE, LATENT_CHANNELS, LEARNING_RATE, TRAIN_TIMESTEPS


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
