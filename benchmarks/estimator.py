"""Baseline estimator benchmark: accuracy on the four suites and CPU throughput.

    python benchmarks/estimator.py

Prints the suite table (the baseline's blind spots: out-of-distribution MPJPE relative to
in-distribution) and inference / training speed in crops per second at the input size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from posegen_env.estimation.baseline import INPUT_SIZE
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.estimation.metrics import format_table
from posegen_env.estimation.prediction import as_batch
from posegen_env.render.avatar import load_avatar
from posegen_env.settings import EstimatorChoice, add_options
from posegen_env.suites.suites import OUT_OF_DISTRIBUTION, evaluate_suites


def throughput(model, batch: int = 256, steps: int = 10) -> tuple[float, float]:
    """(inference, training) crops per second on random crops."""
    x = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE)
    model.eval()
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        for _ in range(steps):
            model(x)
        infer = batch * steps / (time.perf_counter() - start)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = (np.random.default_rng(0).random((64, INPUT_SIZE, INPUT_SIZE, 3)) * 255).astype(np.uint8)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model(as_batch(images, INPUT_SIZE)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train = 64 * steps / (time.perf_counter() - start)
    model.eval()
    return infer, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, EstimatorChoice)
    args = parser.parse_args()
    # CPU throughput (checkpoints load onto CUDA when present)
    model = load_estimator(args.estimator, device="cpu", checkpoint=args.estimator_checkpoint)
    results = evaluate_suites(model, load_avatar())
    print(format_table(results))
    base = results["in-distribution"]["eval14"]["mpjpe_mm"]
    for name in OUT_OF_DISTRIBUTION:
        print(f"{name}: {results[name]['eval14']['mpjpe_mm'] / base:.2f}x the in-distribution MPJPE")
    if isinstance(model, torch.nn.Module):
        infer, train = throughput(model)
        print(f"throughput at {INPUT_SIZE} px ({torch.get_num_threads()} threads): inference {infer:.0f} crops/s, "
              f"training {train:.0f} crops/s (batch 64)")


if __name__ == "__main__":
    main()
