"""A self-contained example: a numpy MLP 'training step' measured with co2_meter and gated by a budget.

pytest examples --co2-region=SE --co2-extrapolate=150000
"""

import numpy as np
import pytest


def train_step(w: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float = 1e-3) -> np.ndarray:
    pred = np.tanh(x @ w)
    grad = x.T @ ((pred - y) * (1 - pred**2)) / len(x)
    return w - lr * grad


@pytest.mark.co2_budget(kg=0.05)
def test_train(co2_meter):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((512, 1024)), rng.standard_normal((512, 256))
    w = rng.standard_normal((1024, 256)) * 0.01
    for _ in co2_meter.steps(30, warmup=3, name="train"):
        w = train_step(w, x, y)


def test_sample(co2_meter):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((1024, 1024)) * 0.01
    with co2_meter.measure("sample", unit="sample", extrapolate=10_000) as m:
        for _ in range(5):
            z = rng.standard_normal((64, 1024))
            for _ in range(20):  # 20 denoising steps per sample
                z = np.tanh(z @ w)
            m.step()
    assert m.emission.co2e_kg < 1.0
