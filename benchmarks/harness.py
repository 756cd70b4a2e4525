"""How the benchmarks measure: training iterations, synthesized samples, decodes.

One :class:`Bench` per session (the ``bench`` fixture) holds the built models (a UNet is
independent of the image size, so one model per config serves every size), the decode
measurements (one per image size) and the results registry.

Training: training iterations (unit ``iteration``) in one window of ``co2_meter``, 1 warm-up,
at least 2 measured, more until the per-test time budget is spent; with a job budget
(``--co2-bench-budget``) the planned steps of the config (``budget.StepControl``), which may
be fewer: the window's ``total`` is that plan, so the live progress line shows it.

Synthesis: a sample is all its denoising steps plus one decode. We measure k denoising steps
(unit ``step``) and the decode separately on a private meter that shares the session's
backend, then record one ``sample`` measurement: per-sample energy = steps x per-step
energy + decode energy, projected to 10,000 samples. Its notes say what it was projected
from; its time and energy columns are what was really measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from pytest_co2.meter import Measurement, Meter, Stats

from . import workloads as w
from .budget import BudgetRun, StepControl
from .builders import build_decoder, build_unet, release_memory
from .registry import Key, Registry, synth_key, train_key
from .steps import DecodeStep, DenoiseStep, TrainStep

#: A round-robin sampler window runs at least this long (several steps where steps are tiny).
MIN_SAMPLER_WINDOW_S = 0.1


@dataclass(frozen=True)
class BenchOptions:
    scale: str = "paper"
    time_budget_s: float = 2.0  # measured seconds per measurement, after the minimum steps
    threads: int = 2
    warmup: int = 1
    min_steps: int = 2
    max_steps: int = 50


def sample_measurement(
    step: Measurement,
    decode: Measurement,
    steps_per_sample: int,
    *,
    name: str,
    extrapolate: int | None,
    decode_measured_here: bool = True,
) -> Measurement:
    """One synthesized sample = ``steps_per_sample`` denoising steps + one decode.

    Per-window energies are ``steps_per_sample x`` each measured step window + the mean
    decode energy; the spread is the step spread scaled by ``steps_per_sample`` (the paper
    scales a per-unit spread linearly) with the decode spread added in quadrature. The
    time, energy and step count are what was measured here: the steps, plus the decodes when
    ``decode_measured_here`` (a decode measurement reused from an earlier test is counted
    there); ``units`` is the fraction of a sample that energy corresponds to.
    """
    s, d = step.energy_per_unit_j, decode.energy_per_unit_j
    mean = steps_per_sample * s.mean + d.mean
    d_std = d.std if math.isfinite(d.std) else 0.0
    d_sem = d.sem if math.isfinite(d.sem) else 0.0
    stats = Stats(
        mean=mean,
        std=math.hypot(steps_per_sample * s.std, d_std),
        sem=math.hypot(steps_per_sample * s.sem, d_sem),
        n=s.n,
    )
    energy_j = step.energy_j + (decode.energy_j if decode_measured_here else 0.0)
    duration_s = step.duration_s + (decode.duration_s if decode_measured_here else 0.0)
    note = (
        f"projected: {steps_per_sample} denoising steps x {s.mean:.4g} J/step (mean of {step.steps} "
        f"measured steps in {step.windows} windows, std {s.std:.3g} J) + one decode {d.mean:.4g} J "
        f"(mean of {decode.steps} decodes measured "
        f"{'here' if decode_measured_here else 'by an earlier test of this session'})"
    )
    return replace(
        step,
        name=name,
        unit="sample",
        units=energy_j / mean if mean > 0 else 0.0,
        duration_s=duration_s,
        energy_j=energy_j,
        energy_per_unit_j=stats,
        unit_energies_j=tuple(steps_per_sample * e + d.mean for e in step.unit_energies_j),
        complete=step.complete and decode.complete,
        notes=(note, *tuple(n for n in step.notes + decode.notes if n != note)),
        extrapolate=extrapolate,
    )


def run_steps(
    meter: Any,
    step: Any,
    control: StepControl,
    *,
    name: str,
    unit: str,
    warmup: int,
    extrapolate: int | None = None,
) -> Measurement:
    """``warmup`` steps, then measured steps while ``control`` says so, in one window."""
    with meter.measure(
        name, unit=unit, warmup=warmup, extrapolate=extrapolate, total=control.steps
    ) as win:
        for _ in range(warmup):
            step()
            win.step()
        done = 0
        while control.more(done, win.measured_s):
            step()
            win.step()
            done += 1
    control.record(done, win.measured_s)
    return meter.measurements[-1]  # type: ignore[no-any-return]


def concat(parts: list[Measurement], *, name: str, warmup: int, note: str) -> Measurement:
    """One measurement from consecutive-or-interleaved windows of the same work and unit."""
    energy_j = math.fsum(p.energy_j for p in parts)
    units = math.fsum(p.units for p in parts)
    per_unit = tuple(e for p in parts for e in p.unit_energies_j)
    first = parts[0]
    devices = tuple(
        replace(d, energy_j=math.fsum(p.devices[i].energy_j for p in parts))
        for i, d in enumerate(first.devices)
    )
    notes = tuple(dict.fromkeys(n for p in parts for n in p.notes))
    return replace(
        first,
        name=name,
        steps=sum(p.steps for p in parts),
        units=units,
        warmup=warmup,
        duration_s=math.fsum(p.duration_s for p in parts),
        energy_j=energy_j,
        energy_per_unit_j=Stats.of(per_unit, energy_j, units),
        unit_energies_j=per_unit,
        devices=devices,
        complete=all(p.complete for p in parts),
        notes=(note, *notes),
    )


class Bench:
    """Models, decoders and decode measurements shared by every benchmark of the session."""

    def __init__(
        self, options: BenchOptions, registry: Registry, budget: BudgetRun | None = None
    ) -> None:
        import torch

        self.options = options
        self.registry = registry
        self.budget = budget
        self.scale = w.check_scale(options.scale)
        torch.set_num_threads(options.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._unets: dict[str, Any] = {}
        self._decoders: dict[int, Any] = {}
        self._decodes: dict[str, Measurement] = {}
        self._interleaved: dict[tuple[Any, ...], dict[tuple[str, int], Measurement]] = {}

    # -- building -------------------------------------------------------------------------------
    def unet(self, model_key: str) -> Any:
        """The UNet of ``model_key``; the previous model is released when another is asked for.

        Keeping one model at a time bounds the session's memory to its largest workload
        (all six paper-scale UNets together hold about 2 GB). A rebuilt model has the same
        weights (same seed); building is outside every measured window.
        """
        if model_key not in self._unets:
            if self._unets:
                self._unets.clear()
                release_memory()
            self._unets[model_key] = build_unet(w.MODELS[model_key], self.scale, device=self.device)
        return self._unets[model_key]

    def decoder(self, dims: int) -> Any:
        if dims not in self._decoders:
            self._decoders[dims] = build_decoder(dims, self.scale, device=self.device)
        return self._decoders[dims]

    def latent(self, image_key: str) -> tuple[int, ...]:
        return w.latent_shape(w.IMAGE_SIZES[image_key], self.scale)

    # -- projection targets ----------------------------------------------------------------------
    @staticmethod
    def target(meter: Any, unit: str) -> int | None:
        """The paper's N for ``unit`` unless the run set one (``--co2-extrapolate``)."""
        settings = getattr(meter, "settings", None)
        given = getattr(settings, "extrapolate", None) or {}
        if unit in given:
            return None  # the command line's value applies
        return {"iteration": w.PAPER_TRAIN_ITERATIONS, "sample": w.PAPER_SAMPLES}.get(unit)

    def control(self, steps: int | None = None) -> StepControl:
        """The job budget's control of the config running now; else ``steps`` exactly, or
        the fixed rule (at least ``min_steps``, more while the time budget lasts)."""
        current = self.budget.current if self.budget is not None else None
        if current is not None:
            return current[1]
        o = self.options
        if steps is not None:
            return StepControl(steps, steps, 0.0)
        return StepControl(o.max_steps, o.min_steps, o.time_budget_s)

    def note_session(self, meter: Any) -> None:
        """Keep the run's accounting (region, PUE, targets, backend) for the paper report."""
        if "region" in self.registry.session:
            return
        s = meter.settings
        self.registry.session.update(
            region=s.region,
            month=s.month,
            pue=s.pue,
            extrapolate=dict(s.extrapolate),
            backend=meter.backend.describe(),
            method=meter.backend.method,
        )

    # -- measuring -------------------------------------------------------------------------------
    def train(
        self,
        meter: Any,
        model_key: str,
        image_key: str,
        *,
        steps: int | None = None,
        key: Key | None = None,
    ) -> Measurement:
        """Measure training iterations of ``model_key`` on ``image_key`` latents and record them."""
        self.note_session(meter)
        image = w.IMAGE_SIZES[image_key]
        step = TrainStep(self.unet(model_key), self.latent(image_key), device=self.device)
        name = f"train {model_key} {w.scaled_label(image, self.scale)}"
        try:
            m = run_steps(
                meter,
                step,
                self.control(steps),
                name=name,
                unit="iteration",
                warmup=self.options.warmup,
                extrapolate=self.target(meter, "iteration"),
            )
        finally:
            step.close()
            del step
            release_memory()  # the iteration's activations and Adam state, back to the OS
        self.registry.add(key or train_key(model_key, image_key), m)
        return m

    def denoise_steps(
        self, backend: Any, model_key: str, image_key: str, kind: str, inference_steps: int
    ) -> Measurement:
        """k denoising steps on a private meter (not recorded in the test)."""
        meter = Meter(backend)
        step = DenoiseStep(
            self.unet(model_key), self.latent(image_key), kind, inference_steps, device=self.device
        )
        return run_steps(
            meter,
            step,
            self.control(),
            name=f"{kind} step",
            unit="step",
            warmup=self.options.warmup,
        )

    def interleaved_steps(
        self, backend: Any, model_key: str, image_key: str, samplers: tuple[tuple[str, int], ...]
    ) -> dict[tuple[str, int], Measurement]:
        """Denoising steps of several samplers measured round-robin (once per session).

        Each round runs one step of every sampler, each in its own one-step window, so a
        change in the machine's state (other load, clocks) affects every sampler alike and
        their per-step costs compare directly. 1 warm-up round, at least 2 measured rounds,
        more while the time budget (per sampler) lasts.
        """
        import time

        key = (model_key, image_key, samplers)
        if key not in self._interleaved:
            o = self.options
            latent = self.latent(image_key)
            steppers = {
                s: DenoiseStep(self.unet(model_key), latent, s[0], s[1], device=self.device)
                for s in samplers
            }
            seconds = dict.fromkeys(samplers, 0.0)
            for _ in range(o.warmup):
                for s, step in steppers.items():
                    t = time.perf_counter()
                    step()
                    seconds[s] = time.perf_counter() - t
            # Tiny (smoke) steps take milliseconds: several per window, so that a window is
            # not mostly the meter's own reading and the threads' spin-wait between steps.
            per_window = {
                s: max(1, math.ceil(MIN_SAMPLER_WINDOW_S / max(dt, 1e-6)))
                for s, dt in seconds.items()
            }
            meter = Meter(backend)
            windows: dict[tuple[str, int], list[Measurement]] = {s: [] for s in samplers}
            start, rounds = time.perf_counter(), 0
            control = self.control()
            # the time budget is per sampler: a round of them may take len(samplers) times it
            while control.more(rounds, time.perf_counter() - start, len(samplers)):
                for s, step in steppers.items():
                    with meter.measure(f"{s[0]} step", unit="step") as win:
                        for _ in range(per_window[s]):
                            step()
                        win.step(per_window[s])
                    windows[s].append(win.measurement)
                rounds += 1
            control.record(rounds, time.perf_counter() - start)
            k = max(per_window.values())
            note = (
                f"steps measured round-robin with {len(samplers) - 1} other samplers "
                f"({rounds} rounds after {o.warmup} warm-up round"
                + (f", up to {k} steps per window)" if k > 1 else ")")
            )
            self._interleaved[key] = {
                s: concat(ms, name=f"{s[0]} step", warmup=o.warmup, note=note)
                for s, ms in windows.items()
            }
        return self._interleaved[key]

    def decode(self, backend: Any, image_key: str) -> Measurement:
        """Decode passes for ``image_key`` (measured once per session and image size)."""
        if image_key not in self._decodes:
            image = w.IMAGE_SIZES[image_key]
            meter = Meter(backend)
            step = DecodeStep(self.decoder(image.dims), self.latent(image_key), device=self.device)
            o = self.options
            # a decode is not the config's step: its own fixed rule, outside the plan's count
            self._decodes[image_key] = run_steps(
                meter,
                step,
                StepControl(o.max_steps, o.min_steps, o.time_budget_s / 2),
                name=f"decode {w.scaled_label(image, self.scale)}",
                unit="decode",
                warmup=o.warmup,
            )
        return self._decodes[image_key]

    def synth(
        self,
        meter: Any,
        model_key: str,
        image_key: str,
        kind: str = "ddpm",
        inference_steps: int = 1000,
        *,
        variant: str = "",
        interleave: tuple[tuple[str, int], ...] = (),
    ) -> Measurement:
        """Measure denoising steps and a decode, record the projected per-sample measurement.

        With ``interleave`` (samplers including this one), the steps are measured round-robin
        with those samplers (see :meth:`interleaved_steps`).
        """
        self.note_session(meter)
        image = w.IMAGE_SIZES[image_key]
        if interleave:
            step_m = self.interleaved_steps(meter.backend, model_key, image_key, interleave)[
                (kind, inference_steps)
            ]
        else:
            step_m = self.denoise_steps(meter.backend, model_key, image_key, kind, inference_steps)
        decode_here = image_key not in self._decodes
        decode_m = self.decode(meter.backend, image_key)
        name = (
            f"sample {model_key} {w.scaled_label(image, self.scale)}: {inference_steps} {kind.upper()} steps + decode "
            f"(projected from {step_m.steps} steps)"
        )
        m = sample_measurement(
            step_m,
            decode_m,
            inference_steps,
            name=name,
            extrapolate=self.target(meter, "sample"),
            decode_measured_here=decode_here,
        )
        meter.record(m)
        self.registry.add(synth_key(model_key, image_key, kind, inference_steps, variant), m)
        return m
