"""The alternating loop: each round learns a policy, collects its samples, fine-tunes, evaluates.

``rounds`` runs and resumes them (``RoundRunner`` takes a round's steps), ``run`` is a run directory's
settings and layout, ``collect`` turns a policy's draws into a dataset, ``report`` writes each run's
tables and plots.
"""

from agents.loop.collect import Collected, collect
from agents.loop.report import markdown_table, write_tables
from agents.loop.rounds import RoundRunner, run_rounds
from agents.loop.run import RoundConfig, RunError, read_run

__all__ = [
    "Collected",
    "RoundConfig",
    "RoundRunner",
    "RunError",
    "collect",
    "markdown_table",
    "read_run",
    "run_rounds",
    "write_tables",
]
