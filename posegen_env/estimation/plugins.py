"""A user's own estimator (or loss), named as ``module:callable``.

One rule for every ``module:callable`` -- an ``--estimator``, a checkpoint's factory, a custom
``--loss``: the module may be importable or a ``.py`` file's path, and the callable is itself the
estimator unless it is a class or takes no arguments, when it is called to build it. A plain
callable is wrapped (``CallableEstimator``) so it meets the estimator interface.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from posegen_env.estimation.spec import EstimatorError, spec_of


class CallableEstimator:
    """Wraps a user's function or model so it meets the interface, keeping the spec it declares."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str = "", device=None):
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__)
        self.spec = spec_of(fn)
        self.input_size = self.spec.input_size
        # the crops' device: as given, else as the callable declares (a ``device`` attribute), else the CPU
        self.device = torch.device(device if device is not None else getattr(fn, "device", "cpu"))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.fn(images)


def _is_factory(obj) -> bool:
    """The ``module:callable`` rule: a callable that takes no arguments builds the estimator; one that
    takes an argument (the images) is the estimator."""
    if not callable(obj) or isinstance(obj, torch.nn.Module):
        return False
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: treat as the estimator
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return not any(p.kind in positional and p.default is inspect.Parameter.empty for p in params) and not any(
        p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)


def check_not_a_module(spec: str) -> None:
    """A spec without a colon is a checkpoint; if it names a Python file or module instead, say how to
    name the callable in it."""
    if Path(spec).is_file() and Path(spec).suffix != ".py":
        return
    module = spec[:-3].replace("/", ".").replace(os.sep, ".") if spec.endswith(".py") else spec
    try:
        found = spec.endswith(".py") or (bool(module) and importlib.util.find_spec(module) is not None)
    except (ImportError, ValueError):
        found = False
    if found:
        example = f"{spec}:make_estimator" if spec.endswith(".py") else f"{module.strip('.')}:make_estimator"
        raise EstimatorError(f"estimator {spec!r} names Python code, not a checkpoint; name the callable in it as "
                             f"'module:callable' or 'file.py:callable', e.g. '{example}'")


def _import(spec: str, what: str = "estimator"):
    """The object a ``module:callable`` string names; the module may also be a ``.py`` file's path."""
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.is_file():
                raise ImportError(f"no file {module_name}")
            name = f"posegen_user.{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
            if name not in sys.modules:  # loaded once, so its classes stay the same objects
                found = importlib.util.spec_from_file_location(name, path)
                assert found is not None and found.loader is not None
                module = importlib.util.module_from_spec(found)
                sys.modules[name] = module
                try:
                    found.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            return getattr(sys.modules[name], attr)
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, SyntaxError) as err:
        raise EstimatorError(f"cannot load {what} {spec!r}: {type(err).__name__}: {err}. Use 'package.module:callable' "
                             "with the module importable (on PYTHONPATH), or 'path/to/file.py:callable'") from err


def absolute_callable(spec: str | None) -> str | None:
    """``spec`` with a relative ``.py`` file path made absolute, so a run resumes from any directory."""
    if spec is None or ":" not in spec:
        return spec
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py") and Path(module_name).is_file():
        return f"{Path(module_name).resolve()}:{attr}"
    return spec


def build_from(spec: str, what: str = "estimator") -> Callable:
    """The estimator a ``module:callable`` names: the callable itself, or what it builds when it is a
    class or takes no arguments (the one rule, whatever its name)."""
    obj = _import(spec, what)
    if isinstance(obj, type) or _is_factory(obj):
        name = getattr(obj, "__qualname__", type(obj).__name__)
        try:
            obj = obj()
        except TypeError as err:
            raise EstimatorError(f"cannot build {what} {spec!r}: {err}. A class or a callable that takes no "
                                 "arguments is called to build the estimator; give its arguments defaults, "
                                 "or export a function of no arguments that returns the model") from err
        except Exception as err:  # the user's own code failed: name it and keep its message
            raise EstimatorError(f"cannot build {what} {spec!r}: calling {name}() raised {type(err).__name__}: "
                                 f"{err}") from err
    return obj
