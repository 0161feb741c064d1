"""How much signal each learning objective gives the search: spread between agents against noise.

    python benchmarks/objective_signal.py [--objectives error,learnability,transfer] [--probe 1024]

One untrained ``search`` population (``--agents`` agents, ``--draws`` draws each, the rounds'
anchoring) is rendered on the people with ``people-baseline`` and scored by every objective twice,
with two scoring seeds (learnability's folds; transfer's probe is drawn afresh). Per objective:
the mean score, its sd per draw, the spread of the agents' mean scores ("agent spread"), the
sampling error of one agent's mean ("noise", sd per draw over sqrt(draws)), the correlation of
the agents' means and of the draws' scores between the two scorings ("repeat"), the correlation
with the raw error per draw and the time (for transfer, also that of making its probe, once per
learning call). The cross-entropy method can only follow an objective whose agent spread stands
above its noise. Scores are in mm (transfer in error units, as the search sees it).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agents.policies import make_policy
from agents.policies.objectives import OBJECTIVES, Objective
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.render.backgrounds import parse_backgrounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--draws", type=int, default=32)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--probe", type=int, default=64, help="anchors in transfer's probe (whole env batches)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    task = PoseGenTask(avatar="people", estimator="people-baseline", background=parse_backgrounds("plain=1,texture=1"),
                       reward={"mode": "raw"})
    env = PoseGenVectorEnv(num_envs=args.num_envs, task=task)
    env.reset(seed=args.seed)
    search = make_policy("search", num_agents=args.agents, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    population = args.agents * args.draws
    agent = np.arange(population) % args.agents
    contexts = np.zeros((population, env.single_observation_space.shape[0]))
    contexts[:, 0] = -1.0 + (2 * agent + 1) / args.agents  # the context's first component picks the agent
    actions = search.act(contexts, rng)
    results = [env.step_batch(chunk)[3] for chunk in np.split(actions, population // args.num_envs)]
    error = np.concatenate([r.mpjpe_mm for r in results])
    print(f"{population} draws of {args.agents} agents, people, people-baseline; raw error mean "
          f"{error.mean():.0f} mm; transfer probes of {args.probe} anchors\n")
    print("| objective | mean | sd per draw | agent spread | noise | repeat (agents) | repeat (draws) | "
          "corr. with raw error | time per population |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.objectives.split(","):
        objective = Objective(name, probe_size=args.probe)
        scorings, seconds, probing = [], [], []
        for seed in (1, 2):
            start = time.perf_counter()
            probe = objective.probe(task, search.anchoring, seed)  # rendered and differentiated once per round
            probing.append(time.perf_counter() - start)
            start = time.perf_counter()
            scorings.append(objective.score(task, results, seed=seed, probe=probe) * 1000.0)
            seconds.append(time.perf_counter() - start)
        score = scorings[0]
        means = [np.array([s[agent == k].mean() for k in range(args.agents)]) for s in scorings]
        repeat = "| " if name == "error" else (f"{np.corrcoef(*means)[0, 1]:.2f} | "
                                               f"{np.corrcoef(*scorings)[0, 1]:.2f}")
        print(f"| {name} | {score.mean():.1f} | {score.std():.1f} | {means[0].std():.1f} | "
              f"{score.std() / np.sqrt(args.draws):.1f} | {repeat} | {np.corrcoef(score, error)[0, 1]:.2f} | "
              f"{np.mean(seconds):.1f} s" + (f" (+ {np.mean(probing):.1f} s probe)" if probe else "") + " |")


if __name__ == "__main__":
    main()
