"""The `--vary` grammar and the grid: which variants of one experiment a comparison races.

`parse_vary("optim.name=sgd:lr=0.05,adam")` reads one command-line axis (its fields in the
grammar of `core.fields`: `model.layer2.out`); `grid` makes every combination of the axes'
values into a variant. A variant is the experiment as it is with only the compared fields
changed (and what the person set for a value: `sgd:lr=0.05`): SGD raced against Adam trains
at the experiment's rate unless given its own, so the race measures the optimizers, not
rates picked behind the person's back.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.fields import set_field
from workbench.core.tools.compare.variants import Variant, unique_label
from workbench.spec import ExperimentSpec, SpecError, derived_name
from workbench.spec.jsonfile import JSONFileError, parse_json

# The optimizers a comparison races unless the person picks others (the Compare panel's
# ticks): the default comparison of an experiment.
DEFAULT_OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam", "rmsprop")
# Fields a person most often varies, with values to start from: the app offers them to vary
# in a comparison, to search and to change in a fork.
COMMON_FIELDS: dict[str, str] = {
    "optim.name": "sgd, momentum, adam, rmsprop",
    "optim.lr": "0.1, 0.01, 0.001",
    "train.batch_size": "16, 64, 256",
    "schedule.name": "constant, step, cosine",
    "regularization.l2": "0, 0.0001, 0.001",
    "model.dropout": "0, 0.2, 0.5",
    "optim.momentum": "0.5, 0.9, 0.99",
    "optim.weight_decay": "0, 0.0001, 0.01",
    "train.epochs": "5, 10, 20",
    "train.seed": "0, 1, 2",
}

def _short(path: str, value: Any) -> str:
    if path == "optim.name":
        return str(value)
    last = path.rsplit(".", 1)[-1]
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{last}={text}"


def grid(spec: ExperimentSpec, axes: Mapping[str, Sequence[Any]],
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Variant]:
    """Every combination of the axes' values, as variants of `spec`: the experiment as it
    is, with only the axes' fields changed.

    `overrides` maps a value (as text, e.g. "adam") to fields set whenever that value is
    chosen, so an optimizer can have hyperparameters of its own: {"adam": {"optim.lr": 1e-3}}.
    Nothing else changes: an optimizer without an override trains at the experiment's rate.
    The axes' own values win over overrides. Raises SpecError naming the field.
    """
    if not axes:
        raise SpecError("vary", "name at least one field to vary")
    for path, values in axes.items():
        if not values:
            raise SpecError(path, "give at least one value to try")
    overrides = overrides or {}
    paths = list(axes)
    variants: list[Variant] = []
    for combo in itertools.product(*(axes[p] for p in paths)):
        current = spec
        for value in combo:
            for opath, ovalue in overrides.get(str(value), {}).items():
                if opath not in axes:
                    current = set_field(current, opath, ovalue)
        for path, value in zip(paths, combo, strict=True):
            current = set_field(current, path, value)
        label = " ".join(_short(p, v) for p, v in zip(paths, combo, strict=True))
        label = unique_label(label, [v.label for v in variants])
        current = current.with_value("name", derived_name(spec.name, f" [{label}]"))
        variants.append(Variant(label, current))
    return variants


def default_variants(spec: ExperimentSpec) -> list[Variant]:
    """The default comparison of an experiment: `DEFAULT_OPTIMIZERS`, each at its rate."""
    return grid(spec, {"optim.name": list(DEFAULT_OPTIMIZERS)})


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (0.1, 64, true, null), else plain text."""
    text = text.strip()
    try:
        return parse_json(text)
    except JSONFileError:  # plain text; the spec's validation says what is wrong with it
        return text


def parse_vary(text: str) -> tuple[str, list[Any], dict[str, dict[str, Any]]]:
    """`optim.name=sgd,adam:lr=0.001:betas=[0.9,0.99]` -> (path, values, per-value overrides).

    An override key without a dot is a sibling of the varied field (`lr` -> `optim.lr`).
    """
    if "=" not in text:
        raise SpecError("vary", f"expected FIELD=V1,V2,..., got {text!r}")
    path, _, rest = text.partition("=")
    path = path.strip()
    section = path.rsplit(".", 1)[0] if "." in path else ""
    values: list[Any] = []
    overrides: dict[str, dict[str, Any]] = {}
    for token in _split_top(rest, ","):
        parts = _split_top(token, ":")
        value = parse_value(parts[0])
        if parts[0].strip() == "":
            raise SpecError(path, f"an empty value in {text!r}")
        values.append(value)
        for part in parts[1:]:
            key, eq, raw = part.partition("=")
            if not eq:
                raise SpecError(path, f"override {part!r} must be FIELD=VALUE")
            key = key.strip()
            full = key if "." in key or not section else f"{section}.{key}"
            overrides.setdefault(str(value), {})[full] = parse_value(raw)
    return path, values, overrides


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets, so `[0.9,0.99]` stays one value."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out
