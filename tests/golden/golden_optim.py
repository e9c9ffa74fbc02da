#!/usr/bin/python3
"""PyTorch goldens for kiln's optimizers, learning-rate schedules and losses.

Run with Debian's interpreter (it has python3-torch 1.13):

    /usr/bin/python3 tests/golden/golden_optim.py

Writes tests/golden/optim/<case>.safetensors (tests/test_optimizer.c reads
them) and optim/cases.txt. Deterministic: fixed seeds, values generated in
float32 (so a float32 run starts from exactly the same numbers) and every
expected value computed by torch in float64 with torch.optim's own
optimizers, torch.nn.utils.clip_grad_norm_ and LambdaLR.

Optimizer cases train the model tanh(x @ w1 + b1) @ w2 with MSE against y.
Each file holds x, y, the initial w1, b1, w2, the kl_optim_opts fields as
float64 scalars named opt.<field> (0 meaning PyTorch's default, as in
driver/kiln_train.h; kind 0 SGD, 1 Adam, 2 AdamW; schedule 0 constant,
1 warmup_rsqrt, 2 cosine, 3 nanogpt; decay_min_rank > 1 puts the
parameters of lower rank in a second param group with weight_decay 0, as
nanoGPT's configure_optimizers does), `losses` (the loss of each step, before its
update) and final.w1, final.b1, final.w2.

Loss cases hold the inputs, the loss and the gradient of sum(loss) with
respect to the float input (grad.pred, grad.logits).
"""
import math
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("golden_optim.py needs PyTorch: run it with Debian's /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_lib import safetensors_bytes  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim")
f64 = torch.float64

SGD, ADAM, ADAMW = 0, 1, 2
CONSTANT, WARMUP_RSQRT, COSINE, NANOGPT = 0, 1, 2, 3
FIELDS = ["kind", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "clip_norm",
          "schedule", "warmup", "total_steps", "min_lr", "decay_min_rank"]


def f32_values(gen, *shape, scale=1.0):
    """Normal values rounded to float32, held as float64."""
    return (torch.randn(shape, generator=gen, dtype=f64) * scale).float().double()


def tiny_model():
    gen = torch.Generator().manual_seed(1234)
    return {
        "x": f32_values(gen, 4, 3),
        "y": f32_values(gen, 4, 2),
        "w1": f32_values(gen, 3, 5, scale=0.5),
        "b1": f32_values(gen, 5, scale=0.1),
        "w2": f32_values(gen, 5, 2, scale=0.5),
    }


def forward(d, w1, b1, w2):
    return F.mse_loss(torch.tanh(d["x"] @ w1 + b1) @ w2, d["y"])


def lr_lambda(o):
    """kiln_run.h's schedules as a LambdaLR factor of step t (0-based)."""
    lr, w, total, min_lr = o["lr"], o["warmup"], o["total_steps"], o["min_lr"]
    if o["schedule"] == WARMUP_RSQRT:
        return lambda t: math.sqrt(w) * min((t + 1) ** -0.5, (t + 1) * w ** -1.5)
    if o["schedule"] == COSINE:
        S = total - w

        def cosine(t):
            if t < w:
                return (t + 1) / w
            s = min(t - w, S)
            return (min_lr + (lr - min_lr) * (1 + math.cos(math.pi * s / S)) / 2) / lr
        return cosine
    if o["schedule"] == NANOGPT:
        return lambda t: nanogpt_get_lr(t, lr, w, total, min_lr) / lr
    return lambda t: 1.0


def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT's train.py get_lr, line for line."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def param_groups(o, params):
    """One group, or nanoGPT's two: rank >= decay_min_rank decays."""
    if o["decay_min_rank"] <= 1:
        return [{"params": params, "weight_decay": o["weight_decay"]}]
    return [{"params": [p for p in params if p.dim() >= o["decay_min_rank"]],
             "weight_decay": o["weight_decay"]},
            {"params": [p for p in params if p.dim() < o["decay_min_rank"]],
             "weight_decay": 0.0}]


def make_optimizer(o, params):
    groups = param_groups(o, params)
    if o["kind"] == SGD:
        return torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"])
    betas = (o["beta1"] or 0.9, o["beta2"] or 0.999)
    cls = torch.optim.Adam if o["kind"] == ADAM else torch.optim.AdamW
    return cls(groups, lr=o["lr"] or 1e-3, betas=betas, eps=o["eps"] or 1e-8)


def optim_case(name, steps, **opts):
    o = dict.fromkeys(FIELDS, 0.0)
    o.update(opts)
    d = tiny_model()
    w = {k: d[k].clone().requires_grad_(True) for k in ("w1", "b1", "w2")}
    params = [w["w1"], w["b1"], w["w2"]]
    opt = make_optimizer(o, params)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(o))
    losses, clipped = [], 0
    for _ in range(steps):
        opt.zero_grad()
        loss = forward(d, w["w1"], w["b1"], w["w2"])
        loss.backward()
        losses.append(loss.item())
        if o["clip_norm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, o["clip_norm"])
            clipped += int(norm.item() > o["clip_norm"])
        opt.step()
        sched.step()
    if o["clip_norm"] > 0 and clipped == 0:
        sys.exit("golden_optim.py: case %s: clip_norm %g never clips" % (name, o["clip_norm"]))
    t = {k: d[k] for k in ("x", "y", "w1", "b1", "w2")}
    for k in FIELDS:
        t["opt." + k] = torch.tensor(float(o[k]), dtype=f64)
    t["losses"] = torch.tensor(losses, dtype=f64)
    for k in ("w1", "b1", "w2"):
        t["final." + k] = w[k].detach()
    return name, t


def initial_grad_norm():
    d = tiny_model()
    w = [d[k].clone().requires_grad_(True) for k in ("w1", "b1", "w2")]
    forward(d, *w).backward()
    return math.sqrt(sum((p.grad ** 2).sum().item() for p in w))


def mse_case():
    gen = torch.Generator().manual_seed(99)
    pred, target = f32_values(gen, 3, 4).requires_grad_(True), f32_values(gen, 3, 4)
    loss = F.mse_loss(pred, target)
    loss.backward()
    return "loss_mse", {"pred": pred.detach(), "target": target, "loss": loss.detach(),
                        "grad.pred": pred.grad}


def masked_xent_case():
    """d2l's MaskedSoftmaxCELoss: per-token cross-entropy, weights zero at
    t >= valid_len[b], mean over T."""
    gen = torch.Generator().manual_seed(7)
    B, T, V = 3, 4, 5
    logits = f32_values(gen, B, T, V, scale=2.0).requires_grad_(True)
    labels = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int32)
    valid_len = torch.tensor([4, 2, 0], dtype=torch.int32)
    weights = (torch.arange(T)[None, :] < valid_len[:, None]).to(f64)
    per_token = F.cross_entropy(logits.permute(0, 2, 1), labels.long(), reduction="none")
    loss = (per_token * weights).mean(dim=1)
    loss.sum().backward()
    return "loss_masked_xent", {"logits": logits.detach(), "labels": labels,
                                "valid_len": valid_len, "loss": loss.detach(),
                                "grad.logits": logits.grad}


def cases():
    # clip at half the first step's gradient norm so clipping triggers
    clip = float("%.3g" % (0.5 * initial_grad_norm()))
    return [
        optim_case("sgd_momentum", 3, kind=SGD, lr=0.1, momentum=0.9, weight_decay=1e-2,
                   clip_norm=clip),
        optim_case("adam", 3, kind=ADAM, lr=0.01, clip_norm=clip),
        optim_case("adamw", 3, kind=ADAMW, lr=0.01, weight_decay=0.1, clip_norm=clip),
        optim_case("sgd_plain", 3, kind=SGD, lr=0.2),
        optim_case("warmup_rsqrt", 4, kind=SGD, lr=0.2, momentum=0.9, schedule=WARMUP_RSQRT,
                   warmup=2),
        optim_case("cosine", 6, kind=ADAM, lr=0.02, schedule=COSINE, warmup=1, total_steps=4,
                   min_lr=0.002, weight_decay=1e-2),
        # nanoGPT's recipe: AdamW, beta2 0.99, decay on matrices only (b1 is
        # in the no-decay group), get_lr's warm-up, cosine and floor
        optim_case("adamw_nanogpt", 6, kind=ADAMW, lr=0.02, beta2=0.99, weight_decay=0.1,
                   clip_norm=clip, schedule=NANOGPT, warmup=2, total_steps=4, min_lr=0.002,
                   decay_min_rank=2),
        mse_case(),
        masked_xent_case(),
    ]


def main(out_dir=OUT_DIR):
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for name, tensors in cases():
        with open(os.path.join(out_dir, name + ".safetensors"), "wb") as f:
            f.write(safetensors_bytes(tensors))
        names.append(name)
    with open(os.path.join(out_dir, "cases.txt"), "w") as f:
        f.write("# optimizer and loss goldens written by tests/golden/golden_optim.py\n")
        f.write("".join(n + "\n" for n in sorted(names)))


if __name__ == "__main__":
    main()
