"""PoseGen: learn the poses and camera views a 3D human pose estimator gets wrong.

Importing the package registers the Gymnasium environment ``PoseGen-v0`` (``gymnasium.make``;
``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` gives the batched one).
"""

import gymnasium

__version__ = "0.1.0"

if "PoseGen-v0" not in gymnasium.registry:
    gymnasium.register(id="PoseGen-v0", entry_point="posegen_env.envs.env:PoseGenEnv",
                       vector_entry_point="posegen_env.envs.vector_env:PoseGenVectorEnv")
