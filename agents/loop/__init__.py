"""The alternating loop: each round learns a policy, collects its samples, fine-tunes, evaluates.

``rounds`` runs and resumes them, ``collect`` turns a policy's draws into a dataset, ``report``
writes each run's tables and plots.
"""

from agents.loop.collect import Collected, collect
from agents.loop.report import markdown_table, write_tables
from agents.loop.rounds import RoundConfig, RunError, read_run, run_rounds

__all__ = [
    "Collected",
    "RoundConfig",
    "RunError",
    "collect",
    "markdown_table",
    "read_run",
    "run_rounds",
    "write_tables",
]
