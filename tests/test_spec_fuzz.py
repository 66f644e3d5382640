"""A seeded fuzz of the spec reader: every outcome is a valid spec or a SpecError naming a field.

Thousands of mutated example specs, random JSON documents and damaged bytes go through
`from_dict`, `from_json` and `load`; nothing else may escape (no TypeError, RecursionError,
OverflowError, UnicodeDecodeError...). The CLI gets a handful of hostile files and must answer
each with exit status 2 and one line.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys

import pytest

from workbench import spec as specmod
from workbench.cli import main
from workbench.paths import resources_dir
from workbench.spec import ExperimentSpec, SpecError

SEED = 20260412
EXAMPLES = [json.loads(p.read_text()) for p in sorted((resources_dir() / "examples")
                                                         .glob("*.json"))]
HOSTILE = [
    None, True, False, 0, -1, 1, 2, 3, 7, 10, 64, 2**31, 2**63, -(2**63), 10**400, 0.0, -0.0,
    0.5, 0.999, 1.0, 1e-320, 1e300, -1e300, float("nan"), float("inf"), "", "x", "0.1",
    "adam", "cuda:abc", "cuda:0", "\0", "é" * 300, "a" * 5000, [], [1], [0.9, 0.999],
    [0.9, 0.999, 0.5], ["a", "b"], {}, {"type": "Linear"}, {"type": ["Linear"]},
    {"type": "Linear", "out": 10**9}, [[[[[[1]]]]]],
]


def deep(levels: int) -> object:
    value: object = 1
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every (key or index) path into a JSON document, the root excluded."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out += paths(child, (*prefix, key))
    return out


def mutate(doc: dict, rng: random.Random) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(paths(doc) or [("name",)])
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        key = where[-1]
        action = rng.random()
        if action < 0.6:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif action < 0.7:
            parent[key] = deep(rng.randint(10, 60))
        elif action < 0.8 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["extra", "lr", "type", "layers", "p", ""])] = rng.choice(HOSTILE)
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(parent) if parent else 1))
        else:
            parent[key] = rng.choice(HOSTILE)
    return doc


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.random()
    if depth > 6 or kind < 0.4:
        return copy.deepcopy(rng.choice(HOSTILE))
    if kind < 0.7:
        keys = ["version", "name", "data", "model", "optim", "schedule", "regularization",
                "train", "layers", "type", "lr", "x"]
        return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def outcome(parse, value) -> ExperimentSpec | SpecError:
    try:
        return parse(value)
    except SpecError as exc:
        return exc


def check_outcome(result, document_is_object: bool) -> None:
    if isinstance(result, ExperimentSpec):
        specmod.validate(result)
        assert specmod.from_json(result.to_json()) == result
        return
    assert isinstance(result, SpecError)
    text = str(result)
    assert "\n" not in text and len(text) < 400, text
    if document_is_object and "nested more than" not in text:
        assert result.path, f"no field named: {text}"


def test_mutated_example_specs():
    rng = random.Random(SEED)
    results = {"ok": 0, "refused": 0}
    for _ in range(1500):
        doc = mutate(rng.choice(EXAMPLES), rng)
        result = outcome(specmod.from_dict, doc)
        check_outcome(result, True)
        results["ok" if isinstance(result, ExperimentSpec) else "refused"] += 1
    assert results["ok"] > 50 and results["refused"] > 500  # both kinds of outcome occur


def test_random_json_documents():
    rng = random.Random(SEED + 1)
    for _ in range(1500):
        doc = random_json(rng)
        check_outcome(outcome(specmod.from_dict, doc), isinstance(doc, dict))
        text = json.dumps(doc)  # NaN and Infinity written as JSON cannot hold them
        check_outcome(outcome(specmod.from_json, text), False)


def test_damaged_bytes_through_the_file_reader(tmp_path):
    rng = random.Random(SEED + 2)
    good = [json.dumps(e).encode() for e in EXAMPLES]
    path = tmp_path / "spec.json"
    for _ in range(400):
        data = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 6)):
            if not data:
                break
            cut = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                data[cut] = rng.randrange(256)
            elif choice < 0.6:
                del data[cut:cut + rng.randint(1, 40)]
            elif choice < 0.8:
                data[cut:cut] = rng.choice([b"\xef\xbb\xbf", b"\xff", b"[" * 200, b"9" * 500,
                                            b"NaN", b"1e999", b'"\\ud800"', b"\x00"])
            else:
                data = data[:cut]
        path.write_bytes(bytes(data))
        check_outcome(outcome(specmod.load, path), False)


HOSTILE_FILES = {
    "not_utf8": b'{"name": "\xff\xfe"}',
    "deep": b"[" * 100_000,
    "big_int": b'{"train": {"seed": ' + b"7" * 400 + b"}}",
    "huge_int": b'{"train": {"seed": ' + b"7" * 5000 + b"}}",
    "list_type": b'{"data": {"name": "moons"}, "model": {"layers": [{"type": ["Linear"]}]}}',
    "number_type": b'{"data": {"name": "moons"}, "model": {"layers": [{"type": 3}]}}',
    "nan": b'{"optim": {"lr": NaN}}',
    "huge_out": b'{"data": {"name": "moons"}, "model": {"layers": [{"type": "Linear", '
                b'"out": 1e30}]}}',
    "bad_device": b'{"data": {"name": "moons"}, "model": {"layers": [{"type": "Linear", '
                  b'"out": 2}]}, "train": {"device": "cuda:abc"}}',
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_cli_train_answers_hostile_files_in_one_line(tmp_path, capsys, name):
    path = tmp_path / f"{name}.json"
    path.write_bytes(HOSTILE_FILES[name])
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"workbench: error: {path}: ")
    assert not (tmp_path / "runs").exists()


def test_the_installed_command_prints_no_traceback(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(HOSTILE_FILES["deep"])
    done = subprocess.run([sys.executable, "-m", "workbench", "train", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"workbench: error: {path}: nested more than 32 levels deep"
