"""Typed settings: one dataclass per group of settings is the one place each setting is spelt.

A field made with ``option`` carries its command-line flag, help and text parser; the scripts'
command lines (``add_options``), what a command line gave (``given``), a sweep's text values
(``from_text``) and the reading of settings files, older ones included (``read_settings``), are
derived from the fields. Command lines stay argparse's, so every option keeps its name, its
``--help`` and its usage errors; pydantic checks the types of what a file holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from posegen_env.device import device_argument

OPTION = "posegen"  # the key of a field's metadata that holds its option
NO_FLAG = ""
NEW = object()  # ``before`` of a setting every settings file holds


@dataclasses.dataclass(frozen=True)
class Option:
    """How a setting appears outside its dataclass."""

    help: str = ""
    flag: str | None = None  # the option's name without "--"; None: the field's name with dashes; "": no option
    parse: Callable[[str], Any] | None = None  # text -> value (command line, --grid); None: by the field's type
    choices: Sequence[str] | None = None
    metavar: str | None = None
    before: Any = NEW  # the value files written before this setting existed meant


def option(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, help: str = "",
           flag: str | None = None, parse: Callable[[str], Any] | None = None, choices: Sequence[str] | None = None,
           metavar: str | None = None, before: Any = NEW) -> Any:
    """A dataclass field that is also a command-line option (``flag=""`` for a setting without one)."""
    meta = {OPTION: Option(help, flag, parse, choices, metavar, before)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option_of(f: dataclasses.Field) -> Option:
    return f.metadata.get(OPTION, Option())


def flag_of(f: dataclasses.Field) -> str:
    """The field's command-line option ("--name"), or "" for none."""
    name = option_of(f).flag
    return "" if name == NO_FLAG else f"--{name or f.name.replace('_', '-')}"


@cache
def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _scalar(hint: Any) -> Any:
    """``int`` for ``int | None``: the type a text value is read as."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 else hint


def comma_list(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (empty parts dropped): how lists are written on a command line."""
    return [part.strip() for part in text.split(",") if part.strip()]


def comma_ints(text: str) -> list[int]:
    try:
        return [int(part) for part in comma_list(text)]
    except ValueError:
        raise ValueError(f"{text!r}: give comma-separated whole numbers, e.g. 0,1,2") from None


def add_options(parser: argparse.ArgumentParser, cls: type, defaults: Any = None, *,
                dest_prefix: str = "", preset: dict[str, Any] | None = None, help_suffix: dict[str, str] | None = None
                ) -> list[str]:
    """Add every option of dataclass ``cls`` to ``parser`` with the values of ``defaults`` (an instance;
    by default ``cls()``) as defaults. The options in ``preset`` (``--quick``'s sizes) default to None,
    for ``fill_preset`` to fill, and their help shows both values. Returns the dests, which are the
    field names after ``dest_prefix``."""
    defaults = cls() if defaults is None else defaults
    preset, dests = preset or {}, []
    suffix = {name: f"; default {_shown(getattr(defaults, name))}, with --quick {_shown(value)}"
              for name, value in preset.items()} | (help_suffix or {})
    for f in dataclasses.fields(cls):
        flag, opt = flag_of(f), option_of(f)
        if not flag:
            continue
        hint = _scalar(hints(cls)[f.name])
        value = None if f.name in preset else getattr(defaults, f.name)
        kwargs: dict[str, Any] = {"dest": dest_prefix + f.name, "default": value,
                                  "help": opt.help + suffix.get(f.name, "")}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _argument_type(opt.parse) if opt.parse else hint if hint in (int, float) else str
            if opt.choices is not None:
                kwargs["choices"] = list(opt.choices)
            if opt.choices is None:
                kwargs["metavar"] = opt.metavar or f.name.upper()
        parser.add_argument(flag, **kwargs)
        dests.append(kwargs["dest"])
    return dests


def _shown(value: Any) -> str:
    """A default as its option is written: a list comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` for argparse, whose usage error then says what its ValueError says."""
    def read(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    read.__name__ = getattr(parse, "__name__", "value")
    return read


def given(parser: argparse.ArgumentParser, dests: Iterable[str], argv: Sequence[str]) -> set[str]:
    """Which of ``dests`` the command line ``argv`` sets, as opposed to leaving at their defaults: argparse
    fills in only the defaults a namespace lacks, so one pre-filled with a marker keeps it where none was given."""
    dests = list(dests)
    parsed = parser.parse_args(list(argv), argparse.Namespace(**dict.fromkeys(dests, _UNSET)))
    return {dest for dest in dests if getattr(parsed, dest) is not _UNSET}


_UNSET = object()


def fill_preset(args: argparse.Namespace, defaults: Any, preset: dict[str, Any], use: bool) -> None:
    """The options of ``preset`` a command line left out (None, see ``add_options``'s ``unset``) take the
    preset's value when ``use`` (e.g. ``--quick``), else their default in ``defaults``."""
    for name in preset:
        if getattr(args, name) is None:
            setattr(args, name, preset[name] if use else getattr(defaults, name))


def check_counts(settings: Any, names: Iterable[str]) -> None:
    """ValueError naming the first of ``names`` whose value in ``settings`` is not a positive whole number."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")


def from_args(cls: type, args: argparse.Namespace, dest_prefix: str = "", **more: Any) -> Any:
    """An instance of ``cls`` from the parsed options ``add_options`` added, plus the fields in ``more``."""
    return cls(**{f.name: getattr(args, dest_prefix + f.name) for f in dataclasses.fields(cls)
                  if flag_of(f) and f.name not in more}, **more)


def with_flags(cls: type, message: str) -> str:
    """``message`` (a settings check's) with the setting it starts with named as its command-line option."""
    for f in dataclasses.fields(cls):
        if message.startswith(f"{f.name} ") and flag_of(f):
            return flag_of(f) + message[len(f.name):]
    return message


def field_named(cls: type, name: str) -> dataclasses.Field:
    known = {f.name: f for f in dataclasses.fields(cls)}
    if name not in known:
        raise ValueError(f"unknown setting {name!r}; settings are {', '.join(sorted(known))}")
    return known[name]


KINDS = {int: "whole number", float: "number", bool: "true or false", dict: "JSON object"}


def from_text(cls: type, name: str, text: str) -> Any:
    """Setting ``name`` of ``cls`` read from ``text`` as its option would read it (a list as "a+b"
    where commas separate values, as in a sweep's --grid); ValueError names the setting and its type."""
    import json

    from pydantic import TypeAdapter, ValidationError

    f = field_named(cls, name)
    hint, opt = hints(cls)[name], option_of(f)
    scalar = _scalar(hint)
    if scalar is not hint and text.lower() == "none":
        return None
    if opt.parse is not None or typing.get_origin(scalar) is list:
        try:
            return (opt.parse or comma_list)(text.replace("+", ",") if typing.get_origin(scalar) is list else text)
        except ValueError as err:
            raise ValueError(f"{name}={text!r}: {err}") from None
    try:
        if scalar is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError
            return value
        return TypeAdapter(scalar).validate_strings(text)
    except (ValueError, ValidationError):
        example = getattr(cls(), name)
        hint_text = "or none" if example is None else f"e.g. {example!r}"
        raise ValueError(f"{name}={text!r}: {name} takes a {KINDS.get(scalar, 'value')} ({hint_text})") from None


def read_settings(cls: type, doc: dict, where: str) -> Any:
    """An instance of ``cls`` from a settings file's ``doc``: settings the file predates take the value
    their ``before`` records, keys this version does not know are left out, and every value is checked
    against its field's type (ValueError naming the setting and ``where``)."""
    from pydantic import TypeAdapter, ValidationError

    values = {}
    for f in dataclasses.fields(cls):
        if f.name in doc:
            hint = hints(cls)[f.name]
            try:
                values[f.name] = TypeAdapter(hint).validate_python(doc[f.name])
            except ValidationError as err:
                raise ValueError(f"{where}: setting {f.name!r} holds {doc[f.name]!r}, which is not "
                                 f"{_describe(hint)} ({err.errors()[0]['msg']})") from None
        elif option_of(f).before is not NEW:
            values[f.name] = option_of(f).before
    return cls(**values)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def absolute_path(text: str) -> str:
    """A path option made absolute, so that a run resumes from any directory."""
    from pathlib import Path

    return str(Path(text).resolve())


# Options many scripts share: each spelt here once and used as a dataclass field (``**more`` adds
# the field's ``before`` or ``parse``); argparse fills in each script's default.
def estimator_option(default: str | None, **more: Any) -> Any:
    return option(default, metavar="ESTIMATOR", help=(
        "a shipped name (default %(default)r), an estimator checkpoint, or 'package.module:callable' / "
        "'file.py:callable' building your torch module or predicting poses (docs/estimators.md)"), **more)


def estimator_checkpoint_option(**more: Any) -> Any:
    return option(None, metavar="PATH", help="weights for the module --estimator builds (a state_dict file)",
                  **more)


def avatar_option(default: str | None, **more: Any) -> Any:
    return option(default, help=(
        "avatar or cast file, or a shipped one (default %(default)r; 'people': people drawn without limit, "
        "'cast': ten fitted people, 'avatar': the one shipped person)"), **more)


def background_mix_option(default: str, **more: Any) -> Any:
    return option(default, help=(
        'backgrounds of every crop: "plain" (a random colour each) or kind weights, e.g. "plain=1,texture=1"; '
        "default %(default)r"), **more)


def backgrounds_option(**more: Any) -> Any:
    return option(None, metavar="DIR", help="a folder of background photos to mix in", **more)


def image_size_option(**more: Any) -> Any:
    return option(None, help="crop side in pixels (default: the input size the estimator declares)", **more)


def choose_option(**more: Any) -> Any:
    return option(factory=list, metavar="CHOICES", help=(
        'what the actions choose: "subject", "background" or both ("subject,background"); default: the '
        "environment draws them"), **more)


@dataclasses.dataclass
class EstimatorChoice:
    """The estimator options of a script that loads one (``add_options(parser, EstimatorChoice,
    EstimatorChoice("people-baseline"))``)."""

    estimator: str | None = estimator_option("baseline")
    estimator_checkpoint: str | None = estimator_checkpoint_option()


@dataclasses.dataclass
class AvatarChoice:
    """The avatar option of a script that renders people."""

    avatar: str | None = avatar_option("avatar")


@dataclasses.dataclass
class BackgroundChoice:
    """The background options of a script that renders crops."""

    background_mix: str = background_mix_option("plain")
    backgrounds: str | None = backgrounds_option()


def add_device_option(parser: argparse.ArgumentParser, help: str = "where to compute") -> None:
    parser.add_argument("--device", type=device_argument, default="auto",
                        help=f"{help}: auto (CUDA if torch sees it), cpu, cuda or cuda:N")
