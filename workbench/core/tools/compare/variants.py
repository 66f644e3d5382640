"""What a comparison is: its variants (a label, the spec each runs, its run once it has
run) and the target accuracy its results table reports against, with its JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import spec as specmod
from workbench.core.store.runs import Run
from workbench.core.training.events import RunFailed, RunFinished, RunStarted
from workbench.spec import ExperimentSpec, SpecError

COMPARISON_VERSION = 1


@dataclass
class Variant:
    """One contestant: a label, the spec it runs, and its run folder once it has run."""

    label: str
    spec: ExperimentSpec
    run_dir: str | None = None


@dataclass
class Comparison:
    name: str
    variants: list[Variant] = field(default_factory=list)
    target_accuracy: float = 0.9

    def add_run(self, run_dir: str | Path, label: str | None = None, *,
                spec: ExperimentSpec | None = None) -> Variant:
        """Add a stored run (already trained) to the comparison; RunError if unreadable.
        `spec`: the run's, when the caller has read it already (off the GUI thread)."""
        run = Run(Path(run_dir))
        if spec is None:
            spec = run.spec()
        if label is None:
            label = f"{spec.optim.name} lr={spec.optim.lr:g} ({run.path.name[:15]})"
        variant = Variant(unique_label(label, [v.label for v in self.variants]), spec,
                          str(run.path))
        self.variants.append(variant)
        return variant

    def record(self, index: int, event: Any) -> None:
        """Keep the run folder a runner's event names for variant `index` (on the thread
        that owns this comparison: the runner itself never writes into it)."""
        if isinstance(event, RunStarted | RunFailed | RunFinished) and event.run_dir:
            self.variants[index].run_dir = event.run_dir

    def pending(self) -> list[int]:
        """Indices of the variants not yet run."""
        return [i for i, v in enumerate(self.variants) if v.run_dir is None]

    def to_dict(self) -> dict[str, Any]:
        return {"version": COMPARISON_VERSION, "name": self.name,
                "target_accuracy": self.target_accuracy,
                "variants": [{"label": v.label, "spec": v.spec.to_dict(), "run_dir": v.run_dir}
                             for v in self.variants]}

    @classmethod
    def from_dict(cls, raw: Any) -> Comparison:
        """Parse a saved comparison; SpecError names the bad field."""
        if not isinstance(raw, dict) or not isinstance(raw.get("variants"), list):
            raise SpecError("variants", "a comparison must be an object with a variants list")
        version = raw.get("version", COMPARISON_VERSION)
        if not isinstance(version, int) or version > COMPARISON_VERSION:
            raise SpecError("version", f"unsupported comparison version {version!r}")
        variants = []
        for i, item in enumerate(raw["variants"]):
            if not isinstance(item, dict) or not isinstance(item.get("label"), str):
                raise SpecError(f"variants[{i}]", "needs a label and a spec")
            try:
                spec = specmod.from_dict(item.get("spec"))
            except SpecError as exc:
                where = f"variants[{i}].spec" + (f".{exc.path}" if exc.path else "")
                raise SpecError(where, exc.reason) from None
            run_dir = item.get("run_dir")
            specmod.check_text(f"variants[{i}].run_dir", run_dir, max_length=specmod.MAX_PATH,
                               optional=True)
            specmod.check_text(f"variants[{i}].label", item["label"],
                               max_length=specmod.MAX_NAME)
            variants.append(Variant(item["label"], spec, run_dir if run_dir else None))
        target = raw.get("target_accuracy", 0.9)
        specmod.check_number("target_accuracy", target, lo=0, hi=1)
        name = raw.get("name", "comparison")
        specmod.check_text("name", name, max_length=specmod.MAX_NAME)
        return cls(name, variants, float(target))


def unique_label(label: str, taken: Sequence[str]) -> str:
    if label not in taken:
        return label
    n = 2
    while f"{label} #{n}" in taken:
        n += 1
    return f"{label} #{n}"
