#!/usr/bin/python3
"""PyTorch golden for kiln's gpt model (models/gpt.c): nanoGPT's GPT
(Karpathy's model.py, bias=True, weight-tied lm_head) written here in torch
with nanoGPT's module names, and one clipped Adam step.

    /usr/bin/python3 tests/golden/golden_gpt.py

writes tests/golden/gpt/gpt.safetensors (read by tests/test_gpt_model.c):
- cfg.<field>: the config as int32 scalars (dropout is 0: kiln's Philox
  masks are not torch's); lr, clip (float64 scalars): the step's settings;
- tokens, targets (int32 [B, T]): windows of one random text, targets the
  tokens shifted by one as in nanoGPT's get_batch;
- every parameter under its named_parameters() name (kiln's parameter
  name), float64 holding float32 values. They are drawn wider than
  nanoGPT's N(0, 0.02) init (which makes attention nearly uniform and the
  model nearly linear) so the golden exercises softmax, GELU and the
  LayerNorms: weights N(0, 0.3), biases N(0, 0.1), gains 1 + N(0, 0.1);
- logits [B, T, V] and loss (float64 scalar, F.cross_entropy's mean);
- grad.NAME: d loss / d NAME; grad_norm: their global 2-norm;
- adam.NAME: NAME after one step (loss.backward(), clip_grad_norm_ to
  clip, Adam lr, default betas and eps).

It also writes tests/golden/gpt/gpt_nobias_adamw.safetensors: the same
config with nanoGPT's bias=False (no Linear biases, LayerNorm gains only)
trained 3 steps by nanoGPT's recipe: torch.optim.AdamW with beta2 0.99 and
weight decay 0.1 on the parameters of dim >= 2 only (configure_optimizers'
two groups), get_lr's warm-up and cosine (warmup_iters 1, lr_decay_iters 2:
the three steps see the warm-up, the peak and the floor) and
clip_grad_norm_. Keys: cfg.*, the recipe's scalars (lr, min_lr, beta2,
weight_decay, clip, warmup, decay_iters), tokens.S / targets.S for steps
S = 0, 1, 2, the initial parameters, losses [3] and adamw3.NAME after the
third step.

Everything after the float32 draw runs in float64. Deterministic:
rerunning rewrites identical bytes.
"""
import math
import os
import sys

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:
    sys.exit("golden_gpt.py needs PyTorch: run it with Debian's /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_lib import safetensors_bytes  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt")
SEED = 20240901
CFG = dict(vocab=11, block=8, embed=16, heads=2, layers=2, batch=3)
LR, CLIP = 0.005, 1.0
# nanoGPT's recipe at golden scale (golden_nobias_adamw)
NANO = dict(lr=0.005, min_lr=0.0005, beta2=0.99, weight_decay=0.1, clip=1.0, warmup=1,
            decay_iters=2)


class LayerNorm(nn.Module):
    """nanoGPT's LayerNorm: an optional bias (F.layer_norm with None)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        bias = c.get("bias", True)
        self.c_attn = nn.Linear(c["embed"], 3 * c["embed"], bias=bias)
        self.c_proj = nn.Linear(c["embed"], c["embed"], bias=bias)
        self.n_head, self.n_embd = c["heads"], c["embed"]
        T = c["block"]
        self.register_buffer("bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        bias = c.get("bias", True)
        self.c_fc = nn.Linear(c["embed"], 4 * c["embed"], bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c["embed"], c["embed"], bias=bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = LayerNorm(c["embed"], c.get("bias", True))
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c["embed"], c.get("bias", True))
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab"], c["embed"]),
            wpe=nn.Embedding(c["block"], c["embed"]),
            h=nn.ModuleList([Block(c) for _ in range(c["layers"])]),
            ln_f=LayerNorm(c["embed"], c.get("bias", True))))
        self.lm_head = nn.Linear(c["embed"], c["vocab"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying

    def forward(self, idx, targets):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                               ignore_index=-1)
        return logits, loss


def draw_weights(net):
    """float32 draws, in named_parameters() order, then float64."""
    with torch.no_grad():
        for n, p in net.named_parameters():
            z = torch.randn(p.shape, dtype=torch.float32)
            if n.endswith("bias"):
                v = 0.1 * z
            elif ".ln_" in n:  # LayerNorm gains (ln_1, ln_2, ln_f)
                v = 1 + 0.1 * z
            else:
                v = 0.3 * z
            p.copy_(v.to(torch.float32))
    return net.double()


def golden(out_dir):
    c = CFG
    torch.manual_seed(SEED)
    net = draw_weights(GPT(c))
    B, T, V = c["batch"], c["block"], c["vocab"]
    text = torch.randint(0, V, (B * T + 1,))
    starts = torch.randint(0, B * T - T, (B,))
    tokens = torch.stack([text[s:s + T] for s in starts])
    targets = torch.stack([text[s + 1:s + 1 + T] for s in starts])

    t = {"cfg." + k: torch.tensor(v, dtype=torch.int32) for k, v in c.items()}
    t["lr"] = torch.tensor(LR, dtype=torch.float64)
    t["clip"] = torch.tensor(CLIP, dtype=torch.float64)
    t["tokens"], t["targets"] = tokens.to(torch.int32), targets.to(torch.int32)
    params = list(net.named_parameters())
    for n, p in params:
        t[n] = p.detach().clone()

    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    optimizer.zero_grad()
    logits, loss = net(tokens, targets)
    loss.backward()
    t["logits"] = logits.detach().clone()
    t["loss"] = loss.detach()
    for n, p in params:
        t["grad." + n] = p.grad.detach().clone()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
    t["grad_norm"] = norm.detach()
    if not norm.item() > 1.05 * CLIP:  # clearly clipped, also in float32
        sys.exit("golden_gpt.py: gradient norm %g does not exceed the clip" % norm.item())
    optimizer.step()
    for n, p in params:
        t["adam." + n] = p.detach().clone()
    with open(os.path.join(out_dir, "gpt.safetensors"), "wb") as f:
        f.write(safetensors_bytes(t))
    print("wrote the gpt golden (%d parameters, loss %.6f, grad norm %.4f) to %s"
          % (len(params), loss.item(), norm.item(), out_dir))


def nanogpt_get_lr(it, r):
    """nanoGPT's train.py get_lr, line for line."""
    if it < r["warmup"]:
        return r["lr"] * (it + 1) / (r["warmup"] + 1)
    if it > r["decay_iters"]:
        return r["min_lr"]
    decay_ratio = (it - r["warmup"]) / (r["decay_iters"] - r["warmup"])
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return r["min_lr"] + coeff * (r["lr"] - r["min_lr"])


def golden_nobias_adamw(out_dir):
    c, r = dict(CFG, bias=False), NANO
    torch.manual_seed(SEED + 1)
    net = draw_weights(GPT(c))
    B, T, V = c["batch"], c["block"], c["vocab"]
    text = torch.randint(0, V, (4 * B * T,))
    t = {"cfg." + k: torch.tensor(v, dtype=torch.int32) for k, v in CFG.items()}
    for k, v in r.items():
        t[k] = torch.tensor(float(v), dtype=torch.float64)
    params = list(net.named_parameters())
    if any(n.endswith(".bias") for n, _ in params):
        sys.exit("golden_gpt.py: bias=False left a bias parameter")
    for n, p in params:
        t[n] = p.detach().clone()
    # configure_optimizers: decay the parameters of dim >= 2 only
    groups = [{"params": [p for _, p in params if p.dim() >= 2], "weight_decay": r["weight_decay"]},
              {"params": [p for _, p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=r["lr"], betas=(0.9, r["beta2"]))
    losses = []
    for step in range(3):
        starts = torch.randint(0, len(text) - T - 1, (B,))
        x = torch.stack([text[s:s + T] for s in starts])
        y = torch.stack([text[s + 1:s + 1 + T] for s in starts])
        t["tokens.%d" % step], t["targets.%d" % step] = x.to(torch.int32), y.to(torch.int32)
        for g in optimizer.param_groups:
            g["lr"] = nanogpt_get_lr(step, r)
        _, loss = net(x, y)
        losses.append(loss.item())
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), r["clip"])
        if step == 0 and not norm.item() > 1.05 * r["clip"]:
            sys.exit("golden_gpt.py: nobias step 0's norm %g does not clip" % norm.item())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    t["losses"] = torch.tensor(losses, dtype=torch.float64)
    for n, p in params:
        t["adamw3." + n] = p.detach().clone()
    with open(os.path.join(out_dir, "gpt_nobias_adamw.safetensors"), "wb") as f:
        f.write(safetensors_bytes(t))
    print("wrote the gpt bias=False AdamW golden (%d parameters, losses %s) to %s"
          % (len(params), ", ".join("%.6f" % v for v in losses), out_dir))


def main(out_dir=OUT_DIR):
    os.makedirs(out_dir, exist_ok=True)
    golden(out_dir)
    golden_nobias_adamw(out_dir)


if __name__ == "__main__":
    main()
