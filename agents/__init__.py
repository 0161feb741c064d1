"""PoseGen's agents: sampling policies, the alternating rounds that use them, and the analysis of runs.

``agents.policies`` (what to sample), ``agents.loop`` (learn, collect, fine-tune, evaluate, repeat)
and ``agents.analysis`` (comparing runs: merges, seeds).
"""
