"""A standalone PyTorch script for a run: rebuild the model, load its weights, retrain it.

The script needs only torch, numpy and safetensors. It holds the layer stack as plain
`nn.Sequential` code, the normalization statistics and the training recipe (optimizer,
schedule, batch size, epochs, seed, regularization, augmentation). It reads MNIST-style IDX
datasets and CIFAR-10 from a folder by itself; other datasets it takes from Workbench when
Workbench is installed. Training repeats the recipe, not the run bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.store.atomic import write_text_atomic
from workbench.spec.layers import CATALOGUE, layer_cost

if TYPE_CHECKING:
    from workbench.core.tools.trained import TrainedRun


def _layer_code(layer_type: str, p: dict, in_shape: tuple[int, ...]) -> str:
    if layer_type == "Linear":
        return f"nn.Linear({in_shape[0]}, {p['out']}, bias={p['bias']})"
    if layer_type == "Conv2d":
        return (f"nn.Conv2d({in_shape[0]}, {p['out']}, kernel_size={p['kernel']}, "
                f"stride={p['stride']}, padding={p['padding']}, bias={p['bias']})")
    if layer_type in ("MaxPool2d", "AvgPool2d"):
        return f"nn.{layer_type}({p['kernel']}, {p['stride'] or p['kernel']})"
    if layer_type == "GlobalAvgPool":
        return "nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())"
    if layer_type == "BatchNorm":
        kind = "1d" if len(in_shape) == 1 else "2d"
        return f"nn.BatchNorm{kind}({in_shape[0]})"
    if layer_type == "Dropout":
        return f"nn.Dropout({p['p']})"
    if layer_type == "LeakyReLU":
        return f"nn.LeakyReLU({p['slope']})"
    return f"nn.{layer_type}()"


def model_code(loaded: TrainedRun) -> str:
    """The body of `build_model`: one line per layer, as the spec builds it."""
    shape = loaded.splits.info.input_shape
    lines = []
    for layer in loaded.spec.model.layers:
        params = CATALOGUE[layer.type].resolve(layer.params)
        out = layer_cost(layer, shape).out_shape
        lines.append(f"        {_layer_code(layer.type, params, shape)},  # -> {out}")
        shape = out
    return "\n".join(lines)


def write_script(loaded: TrainedRun, path: Path, weights_name: str) -> Path:
    spec = loaded.spec
    info = loaded.splits.info
    s = loaded.splits
    recipe = {"optim": spec.to_dict()["optim"], "schedule": spec.to_dict()["schedule"],
              "regularization": spec.to_dict()["regularization"],
              "train": spec.to_dict()["train"], "data": spec.to_dict()["data"]}
    text = _TEMPLATE.format(
        name=spec.name, run=loaded.run.path.name, weights=weights_name,
        class_names=json.dumps(list(info.class_names)), input_shape=tuple(info.input_shape),
        mean=list(s.mean), std=list(s.std), image=info.is_image,
        num_classes=info.num_classes, layers=model_code(loaded),
        scale="/255" if info.is_image else "",
        recipe=json.dumps(recipe, indent=4).replace("true", "True").replace(
            "false", "False").replace("null", "None"))
    write_text_atomic(path, text)
    return path


_TEMPLATE = '''"""{name}: rebuilt from Workbench run {run}.

    python {{this}}                     rebuild the model, load {weights}, print it
    python {{this}} --train DATA_FOLDER  train it again from scratch with the same recipe

Needs torch, numpy and safetensors. Inputs are float32 {input_shape} normalized as
(x{scale} - MEAN) / STD per channel (or feature).
"""

import argparse
import gzip
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASS_NAMES = {class_names}
INPUT_SHAPE = {input_shape}
MEAN = {mean}
STD = {std}
IMAGE = {image}
NUM_CLASSES = {num_classes}
WEIGHTS = Path(__file__).with_name("{weights}")
RECIPE = {recipe}


def build_model():
    return nn.Sequential(
{layers}
    )


def load_model(path=WEIGHTS):
    from safetensors.torch import load_file

    model = build_model()
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def normalize(x):
    """Raw inputs (uint8 pixels or float features) -> what the model takes."""
    x = torch.as_tensor(x).to(torch.float32)
    shape = (1, -1, 1, 1) if IMAGE else (1, -1)
    if IMAGE:
        x = x / 255.0
    return (x - torch.tensor(MEAN).view(shape)) / torch.tensor(STD).view(shape)


def predict(model, x_raw):
    with torch.no_grad():
        out = model(normalize(x_raw))
    return out.argmax(1) if NUM_CLASSES else out.squeeze(1)


# -- data ---------------------------------------------------------------------------------
def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _read_cifar(root):
    import pickle

    folder = Path(root) / "cifar-10-batches-py"
    folder = folder if folder.is_dir() else Path(root)
    parts = []
    for name in [f"data_batch_{{i}}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        parts.append((d[b"data"].reshape(-1, 3, 32, 32), np.array(d[b"labels"])))
    train_x = np.concatenate([p[0] for p in parts[:5]])
    train_y = np.concatenate([p[1] for p in parts[:5]])
    return train_x, train_y, parts[5][0], parts[5][1]


def load_data(root):
    """(train_x, train_y, val_x, val_y) as tensors, val drawn as Workbench draws it."""
    data = RECIPE["data"]
    name, seed = data["name"], RECIPE["train"]["seed"]
    if name in ("mnist", "mnist_small", "fashion_mnist", "kmnist"):
        root = Path(root)
        train_x = _read_idx(root / "train-images-idx3-ubyte.gz")[:, None]
        train_y = _read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64)
    elif name == "cifar10":
        train_x, train_y, _, _ = _read_cifar(root)
    else:
        from workbench import spec as specmod
        from workbench.core.data import load_splits

        s = load_splits(specmod.DataSpec(**{{**data, "augment": specmod.AugmentSpec(
            **data["augment"])}}), seed)
        return s.train_x, s.train_y, s.val_x, s.val_y
    perm = np.random.default_rng([seed, 0x5B1D]).permutation(len(train_x))
    n_val = int(np.floor(data["val_fraction"] * len(train_x) + 0.5))
    val, train = perm[:n_val], perm[n_val:]
    as_t = torch.from_numpy
    return (as_t(np.ascontiguousarray(train_x[train])), as_t(train_y[train].astype(np.int64)),
            as_t(np.ascontiguousarray(train_x[val])), as_t(train_y[val].astype(np.int64)))


def augment(x, generator):
    """Random crop of the zero-padded image, flip, as Workbench does (normalized x)."""
    aug = RECIPE["data"]["augment"]
    if IMAGE and aug["crop_pad"] > 0:
        pad = aug["crop_pad"]
        b, c, h, w = x.shape
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
        off = torch.randint(0, 2 * pad + 1, (2, b), generator=generator)
        rows = off[0, :, None] + torch.arange(h)
        cols = off[1, :, None] + torch.arange(w)
        x = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
        x = x.gather(3, cols[:, None, None, :].expand(b, c, h, w))
    if IMAGE and aug["hflip"]:
        flip = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


# -- training -----------------------------------------------------------------------------
def make_optimizer(params):
    o, l2 = RECIPE["optim"], RECIPE["regularization"]["l2"]
    name, decay = o["name"], o["weight_decay"] + l2
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=o["lr"], weight_decay=decay)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                               nesterov=name == "nesterov", weight_decay=decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=o["lr"], betas=o["betas"], eps=o["eps"],
                                weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"], betas=o["betas"], eps=o["eps"],
                                 weight_decay=o["weight_decay"])
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o["lr"], alpha=o["alpha"], eps=o["eps"],
                                   weight_decay=decay)
    return torch.optim.Adagrad(params, lr=o["lr"], eps=o["eps"], weight_decay=decay)


def lr_at(epoch, step, steps_per_epoch, plateau_factor=1.0):
    s, lr0, epochs = RECIPE["schedule"], RECIPE["optim"]["lr"], RECIPE["train"]["epochs"]
    name = s["name"]
    if name == "step":
        base = lr0 * s["gamma"] ** (epoch // s["step_size"])
    elif name == "exponential":
        base = lr0 * s["gamma"] ** epoch
    elif name == "inv_sqrt":
        base = lr0 / math.sqrt(1.0 + s["decay"] * epoch)
    elif name == "cosine":
        t = min(epoch / max(1, epochs), 1.0)
        base = s["min_lr"] + (lr0 - s["min_lr"]) * 0.5 * (1.0 + math.cos(math.pi * t))
    elif name == "plateau":
        base = lr0 * plateau_factor
    else:
        base = lr0
    warm = s["warmup_epochs"] * steps_per_epoch
    g = epoch * steps_per_epoch + step
    return base * (g + 1) / warm if g < warm else base


def train(root):
    t, reg = RECIPE["train"], RECIPE["regularization"]
    train_x, train_y, val_x, val_y = load_data(root)
    torch.manual_seed(t["seed"])
    model = build_model()
    optimizer = make_optimizer(model.parameters())
    loss_fn = nn.CrossEntropyLoss() if NUM_CLASSES else nn.MSELoss()
    generator = torch.Generator().manual_seed(t["seed"] + 1)
    n = len(train_x)
    bs = n if RECIPE["optim"]["name"] == "gd" else min(t["batch_size"], n)
    steps = n // bs if n % bs == 1 else -(-n // bs)
    weights = [p for p in model.parameters() if p.dim() > 1]
    plateau, best, bad = 1.0, math.inf, 0
    for epoch in range(t["epochs"]):
        model.train()
        perm = torch.randperm(n, generator=generator)
        for step in range(steps):
            idx = perm[step * bs:(step + 1) * bs]
            xb = normalize(train_x[idx])
            xb = augment(xb, generator)
            if RECIPE["data"]["augment"]["noise_std"] > 0:
                xb = xb + RECIPE["data"]["augment"]["noise_std"] * torch.randn(
                    xb.shape, generator=generator)
            yb = train_y[idx]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch, step, steps, plateau)
            loss = loss_fn(model(xb), yb)
            total = loss + reg["l1"] * sum(w.abs().sum() for w in weights) if reg["l1"] else loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if reg["grad_clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), reg["grad_clip"])
            optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(normalize(val_x))
            val_loss = float(loss_fn(out, val_y))
            acc = float((out.argmax(1) == val_y).float().mean()) if NUM_CLASSES else None
        s = RECIPE["schedule"]
        if s["name"] == "plateau":
            if val_loss < best:
                best, bad = val_loss, 0
            else:
                bad += 1
                if bad >= s["patience"]:
                    plateau, bad = plateau * s["factor"], 0
        print(f"epoch {{epoch + 1}}: val_loss {{val_loss:.4f}} val_accuracy {{acc}}")
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", metavar="DATA_FOLDER", help="retrain from scratch")
    args = parser.parse_args()
    if args.train:
        trained = train(args.train)
        torch.save(trained.state_dict(), Path(__file__).with_suffix(".retrained.pt"))
    else:
        m = load_model()
        print(m)
        print(sum(p.numel() for p in m.parameters()), "parameters")
'''
