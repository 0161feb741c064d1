"""Comparing finished runs: merging policies run side by side, and policies over seeds."""

from agents.analysis.merge import merge_runs
from agents.analysis.seeds import final_rounds, seeds_table, summarise, write_summary

__all__ = ["final_rounds", "merge_runs", "seeds_table", "summarise", "write_summary"]
