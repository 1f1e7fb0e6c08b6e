"""kerasmer against the same network in PyTorch: training samples/s per dtype and their ratio.

The PyTorch peer of kerasmer's ``resnet3d18`` is torchvision's ``r3d_18`` (the 3D ResNet-18 of
Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018, which
MERANet's Table 2 follows): written here, because torchvision does not install beside every torch
build.  Its modules carry kerasmer's layer names, so kerasmer's weights are copied into it and the two
networks are checked to give the same outputs (float32, inference) before anything is timed; their
parameter counts must match too (33,167,811 for ``resnet3d18`` with 3 classes, the paper's count).
``meranet18`` (MERANet, Gajjala et al., ICVGIP 2021, §3: channel and spatio-temporal attention in
every block) is built the same way.

Timed: a training step (forward, backward, SGD with momentum) at batch 8 on 16×112×112×3 clips, in
float32 and in bfloat16 — kerasmer's ``model.fit`` under ``mixed_bfloat16``; PyTorch under
``torch.autocast("cpu", torch.bfloat16)`` with the model and the clips in ``channels_last_3d``.  Per
model and dtype, one block of ``benchmarks/_harness.py`` interleaves PyTorch and kerasmer round by
round (after a wait for a quiet machine) and prints the medians and the kerasmer / PyTorch ratio
(above 1: kerasmer faster).

PyTorch is an optional peer, never a kerasmer dependency: without ``torch`` the script says so and
exits with status 0 (nothing to compare).

Usage::

    python benchmarks/peer_pytorch.py                       # resnet3d18 and meranet18, paper sizes
    python benchmarks/peer_pytorch.py --models resnet3d18 --rounds 6 --json peer.json
    python benchmarks/peer_pytorch.py --quick --no-wait     # seconds: tiny clips, checks the script

Example:
    >>> # python benchmarks/peer_pytorch.py --models resnet3d18 --dtypes float32   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _harness import Harness, add_arguments, print_table  # noqa: E402  (first: it puts the checkout on sys.path)

PAPER_PARAMS = {"resnet3d18": 33_167_811}  # MERANet §5.1, 3 classes
STAGE_FILTERS = (64, 128, 256, 512)
DTYPES = {"float32": "float32", "bf16": "mixed_bfloat16"}  # name: kerasmer policy


def import_torch():
    """``torch``, or None (with a message) when it cannot be imported."""
    try:
        import torch  # optional peer: never a kerasmer dependency
    except ImportError as err:
        print(f"peer_pytorch: PyTorch is not installed ({err}); it is an optional peer, not a kerasmer "
              "dependency. Install torch to compare kerasmer with it. Nothing measured.")
        return None
    return torch


def torch_network(torch, name: str, *, num_classes: int, st_kernel: int = 5, reduction: int = 16):
    """kerasmer's ``resnet3d18`` or ``meranet18`` in PyTorch, its modules named as kerasmer's layers.

    Args:
        torch: the imported ``torch`` module.
        name: ``"resnet3d18"`` or ``"meranet18"``.
        num_classes: classes of the linear head (``predictions``).
        st_kernel, reduction: MERANet's attention settings (kerasmer's defaults).

    Returns:
        An ``nn.Module`` taking ``(batch, C, T, H, W)`` clips and returning logits.
    """
    nn = torch.nn
    attention = name == "meranet18"
    layers = nn.ModuleDict()

    def conv_bn(key, cin, cout, kernel, stride):
        layers[f"{key}_conv"] = nn.Conv3d(cin, cout, kernel, stride, tuple(k // 2 for k in kernel), bias=False)
        layers[f"{key}_bn"] = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1)

    conv_bn("stem", 3, 64, (3, 7, 7), (1, 2, 2))
    blocks, cin = [], 64
    for stage, filters in enumerate(STAGE_FILTERS, start=1):
        for block in (1, 2):
            key, stride = f"stage{stage}_block{block}", (2 if stage > 1 and block == 1 else 1)
            conv_bn(f"{key}_1", cin, filters, (3, 3, 3), (stride,) * 3)
            conv_bn(f"{key}_2", filters, filters, (3, 3, 3), (1, 1, 1))
            if stride != 1 or cin != filters:
                conv_bn(f"{key}_shortcut", cin, filters, (1, 1, 1), (stride,) * 3)
            if attention:
                layers[f"{key}_ca_reduce"] = nn.Conv3d(filters, filters // reduction, 1)
                layers[f"{key}_ca_expand"] = nn.Conv3d(filters // reduction, filters, 1)
                layers[f"{key}_st_conv"] = nn.Conv3d(2, 1, st_kernel, padding=st_kernel // 2)
            blocks.append(key)
            cin = filters
    layers["predictions"] = nn.Linear(512, num_classes)
    return _Network(torch, layers, blocks, attention)


def _Network(torch, layers, blocks, attention):  # noqa: N802  (a class made where torch is known)
    nn, F = torch.nn, torch.nn.functional

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = layers

        def cbr(self, key, x, relu=True):
            x = self.layers[f"{key}_bn"](self.layers[f"{key}_conv"](x))
            return F.relu(x) if relu else x

        def block(self, key, x):
            y = self.cbr(f"{key}_2", self.cbr(f"{key}_1", x), relu=False)
            if attention:  # eq. (6)-(9) channel attention, then eq. (1)-(5) spatio-temporal attention
                pooled = [F.adaptive_avg_pool3d(y, 1), F.adaptive_max_pool3d(y, 1)]
                mlp = [self.layers[f"{key}_ca_expand"](F.relu(self.layers[f"{key}_ca_reduce"](p)))
                       for p in pooled]
                y = y * torch.sigmoid(mlp[0] + mlp[1])
                maps = torch.cat([y.mean(dim=1, keepdim=True), y.amax(dim=1, keepdim=True)], dim=1)
                y = y * torch.sigmoid(self.layers[f"{key}_st_conv"](maps))
            shortcut = self.cbr(f"{key}_shortcut", x, relu=False) if f"{key}_shortcut_conv" in self.layers else x
            return F.relu(y + shortcut)

        def forward(self, x):
            x = self.cbr("stem", x)
            for key in blocks:
                x = self.block(key, x)
            return self.layers["predictions"](torch.flatten(F.adaptive_avg_pool3d(x, 1), 1))

    return Network()


def copy_from_keras(torch, net, model) -> None:
    """Copy a kerasmer model's weights into :func:`torch_network`'s network, module by layer name.

    Conv kernels go from Keras' (t, h, w, in, out) to PyTorch's (out, in, t, h, w), dense kernels are
    transposed, batch norm statistics copied.
    """
    for key, module in net.layers.items():
        weights = model.get_layer(key).get_weights()
        if isinstance(module, torch.nn.Conv3d):
            tensors = [weights[0].transpose(4, 3, 0, 1, 2), *weights[1:]]
            targets = [module.weight, module.bias][:len(tensors)]
        elif isinstance(module, torch.nn.BatchNorm3d):
            tensors = weights
            targets = [module.weight, module.bias, module.running_mean, module.running_var]
        else:
            tensors, targets = [weights[0].T, weights[1]], [module.weight, module.bias]
        with torch.no_grad():
            for target, value in zip(targets, tensors, strict=True):
                target.copy_(torch.from_numpy(value.copy()))


def check_same_network(torch, name, shape, num_classes) -> dict:
    """Build both networks (float32), copy kerasmer's weights over, compare counts and outputs.

    Raises:
        SystemExit: the parameter counts or the outputs differ (the peer would not be the same network).
    """
    import keras
    import numpy as np

    import kerasmer

    keras.utils.set_random_seed(0)
    model = kerasmer.build_model(name, num_classes=num_classes, input_shape=shape, precision="float32")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # BN statistics away from (0, 1), so the check covers them
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g * rng.uniform(0.5, 1.5, g.shape), b + rng.normal(0, 0.1, b.shape),
                               m + rng.normal(0, 0.1, m.shape), v * rng.uniform(0.5, 1.5, v.shape)])
    net = torch_network(torch, name, num_classes=num_classes).eval()
    copy_from_keras(torch, net, model)
    ours = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    peer = sum(p.numel() for p in net.parameters())
    x = rng.normal(size=(2, *shape)).astype("float32")
    want = keras.ops.convert_to_numpy(model(x, training=False))
    with torch.no_grad():
        got = torch.softmax(net(torch.from_numpy(x).permute(0, 4, 1, 2, 3)), dim=-1).numpy()
    diff = float(np.max(np.abs(got - want)))
    print(f"{name}: parameters kerasmer {ours:,}, PyTorch {peer:,}; max |Δ probability| {diff:.2e}", flush=True)
    if ours != peer or diff > 1e-4:
        raise SystemExit(f"peer_pytorch: the PyTorch {name} is not kerasmer's network "
                         f"(parameters {ours:,} vs {peer:,}, max output difference {diff:.2e})")
    return {"kerasmer_params": ours, "pytorch_params": peer, "max_abs_output_diff": diff}


def make_torch_trainer(torch, name, shape, dtype, *, batch, steps, warmup, num_classes):
    """A callable timing ``steps`` PyTorch training steps; returns samples/s.

    SGD with momentum, cross-entropy on logits, the model and the clips in ``channels_last_3d``;
    under ``torch.autocast("cpu", torch.bfloat16)`` when ``dtype`` is ``"bf16"``.
    """
    torch.manual_seed(0)
    net = torch_network(torch, name, num_classes=num_classes).to(memory_format=torch.channels_last_3d).train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    t, h, w, c = shape
    x = torch.randn(batch, c, t, h, w).to(memory_format=torch.channels_last_3d)
    y = torch.arange(batch) % num_classes
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()

    def run():
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return batch * steps / (time.perf_counter() - t0)

    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=None, choices=["resnet3d18", "meranet18"],
                   help="default: both (with --quick: resnet3d18)")
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--input-shape", default="16,112,112,3", help="T,H,W,C of the clips (default %(default)s)")
    p.add_argument("--steps", type=int, default=2, help="training steps per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per framework before the rounds")
    add_arguments(p, rounds=6)
    args = p.parse_args(argv)
    torch = import_torch()
    if torch is None:
        return 0
    if args.quick:  # seconds: a tiny clip, one step per round, one torch thread (no oversubscription)
        args.models = args.models or ["resnet3d18"]
        args.batch, args.input_shape, args.steps, args.warmup, args.rounds = 2, "4,16,16,3", 1, 1, 2
        torch.set_num_threads(1)
    args.models = args.models or ["resnet3d18", "meranet18"]
    shape = tuple(int(v) for v in args.input_shape.split(","))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_training import make_trainer  # kerasmer's side: model.fit, as bench_training times it

    harness = Harness(args, "peer_pytorch")
    harness.note("torch_threads", torch.get_num_threads())
    rows = []
    for name in args.models:
        harness.note(f"{name} check", check_same_network(torch, name, shape, 3))
        for dtype in args.dtypes:
            configs = {"pytorch": make_torch_trainer(torch, name, shape, dtype, batch=args.batch, steps=args.steps,
                                                     warmup=args.warmup, num_classes=3),
                       "kerasmer": make_trainer(name, shape, DTYPES[dtype], args.batch, args.steps, args.warmup)}
            block = harness.block(f"{name} {dtype} training", configs, unit="samples/s",
                                  info={"input_shape": list(shape), "batch": args.batch, "steps_per_round": args.steps})
            rows.append((name, dtype, block))
    table = [(name, dtype, f"{b['configs']['kerasmer']['median']:.3f}", f"{b['configs']['pytorch']['median']:.3f}",
              f"{b['configs']['kerasmer']['ratio']:.2f}", f"{b['load_before']} → {b['load_after']}")
             for name, dtype, b in rows]
    print_table("| model | dtype | kerasmer samples/s | PyTorch samples/s | kerasmer / PyTorch | load |", table)
    harness.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
