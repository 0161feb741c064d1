"""The test suites: in-distribution, novel views, novel poses and hard, each with a test and a validation split.

The only layer that reads the held-out poses and cameras (``heldout_poses``); a contract in
``pyproject.toml`` keeps every other module from importing them.
"""

from posegen_env.suites.suites import (
    OUT_OF_DISTRIBUTION,
    SPLITS,
    SUITES,
    build_suite,
    evaluate_suites,
    load_suite,
    suite_path,
)

__all__ = ["OUT_OF_DISTRIBUTION", "SPLITS", "SUITES", "build_suite", "evaluate_suites", "load_suite", "suite_path"]
