"""Evaluate a 3D pose estimator on the test suites or on any dataset in PoseGen's format.

    python train/evaluate.py                                   # shipped baseline, all four suites
    python train/evaluate.py --estimator runs/estimator.pt --data novel-views
    python train/evaluate.py --estimator mypkg.models:make_estimator --data path/to/dataset
    python train/evaluate.py --estimator examples/resnet_h36m.py:make_estimator --estimator-checkpoint runs/resnet.pt
    python train/evaluate.py --split validation               # the suites' validation split, for choosing settings

The suites are rendered at the estimator's declared input size and crop margin (cached per
size). Prints a Markdown table (MPJPE, PA-MPJPE, PCK3D@150 on its joint set's 14-joint subset,
MPJPE on all its joints) and writes every figure, per joint too, as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.body.joint_sets import JointSetError
from posegen_env.cli import run_script
from posegen_env.data.dataset import DatasetError, load_dataset
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.estimation.evaluate import evaluate_dataset
from posegen_env.estimation.metrics import format_table
from posegen_env.estimation.spec import EstimatorError, spec_of
from posegen_env.render.avatar import AvatarError
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.backgrounds import BackgroundError, parse_backgrounds
from posegen_env.settings import AvatarChoice, BackgroundChoice, EstimatorChoice, add_options
from posegen_env.suites.suites import SPLITS, SUITES, evaluate_suites


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, EstimatorChoice)
    parser.add_argument("--image-size", type=int, default=None,
                        help="crop side of the suites (default: the estimator's declared input size)")
    parser.add_argument("--no-detection", action="store_true",
                        help="count samples the estimator returns NaN for as 'no detection' instead of failing")
    parser.add_argument("--data", nargs="+", default=["all"],
                        help=f"suite names ({', '.join(SUITES)}), 'all', or dataset folders")
    add_options(parser, AvatarChoice, help_suffix={"avatar": "; a cast or the people render the suites with the "
                                                             "subjects --subjects names"})
    parser.add_argument("--subjects", choices=("heldout", "validation", "train"), default="heldout",
                        help="with a cast or the people: the held-out people (reported figures), the validation "
                             "people (choosing settings; the people space has them) or the training ones (diagnosis)")
    add_options(parser, BackgroundChoice)
    parser.add_argument("--suite-size", type=int, default=500)
    parser.add_argument("--body", default=None,
                        help="body model the dataset folders were rendered with, for joint sets other than SMPL-24 "
                             "(default: the shipped body, or $POSEGEN_BODY_MODEL)")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="suite split: 'test' for reported figures, 'validation' for choosing settings")
    parser.add_argument("--json", type=Path, default=Path("runs/evaluation.json"))
    args = parser.parse_args(argv)

    background = parse_backgrounds(args.background_mix, args.backgrounds)
    estimator = load_estimator(args.estimator, checkpoint=args.estimator_checkpoint)
    size = args.image_size or spec_of(estimator).input_size
    names = list(SUITES) if args.data == ["all"] else args.data
    avatar = load_renderer(args.avatar) if any(n in SUITES for n in names) else None
    results = {}
    for name in names:
        if name in SUITES:
            results.update(evaluate_suites(estimator, avatar, [name], args.suite_size, split=args.split,
                                           subjects=args.subjects, background=background, image_size=size,
                                           missing=args.no_detection))
        elif Path(name).is_dir():
            results[name] = evaluate_dataset(estimator, load_dataset(name), body=load_body_model(args.body),
                                             missing=args.no_detection)
        else:
            parser.error(f"{name!r} is neither a suite ({', '.join(SUITES)}) nor a dataset folder")
    print(format_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"estimator": args.estimator, "split": args.split,
                                       "background_mix": args.background_mix, "results": results}, indent=1))
    print(f"wrote {args.json}")


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError, BackgroundError, BodyModelError, DatasetError, EstimatorError, JointSetError)


if __name__ == "__main__":
    run_script(main, "evaluate.py", ERRORS)
