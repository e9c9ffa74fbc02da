#!/usr/bin/python3
"""Generates kiln's gradient golden cases from PyTorch autograd.

Run with Debian's interpreter explicitly (it has python3-torch 1.13):

    /usr/bin/python3 tests/golden/golden_grads.py

gen.py also calls main(out_dir). For each case it writes
tests/golden/grads/<case>.kir (a forward graph in the IR text format) and
<case>.safetensors holding the inputs (named as the graph's arguments), the
forward output out0, and grad.<name> for every float argument: the gradient
of sum(output 0) by torch.autograd. tests/test_grad_golden.c differentiates
each graph with pass_autodiff and compares on the reference interpreter and
the JIT. grads/cases.txt lists the cases.

Expected values: the whole forward is one float64 autograd graph on the
float64 images of the (already rounded) inputs, so every expected gradient
is the exact derivative at the stored inputs, rounded once to the
argument's dtype. Deterministic: each case seeds torch from a CRC of its
name (golden_lib.Graph), so regeneration is byte-identical.
"""
import math
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("golden_grads.py needs PyTorch: run it with Debian's /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_lib import UNARY, Graph, f32, f64, i32, i64, pos, randn, safetensors_bytes  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grads")
FLOATS = [(f32, "f32"), (f64, "f64")]
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class GradGraph(Graph):
    """A Graph whose float arguments are float64 autograd leaves and whose
    nodes keep their unrounded float64 results as the next node's operand."""

    def __init__(self, name, comment=None):
        super().__init__(name, comment)
        self.leaves = {}

    def arg(self, name, t):
        v = super().arg(name, t)
        if t.dtype.is_floating_point:
            v.h = t.detach().to(torch.float64, copy=True).requires_grad_(True)
            self.leaves[name] = v.h
        return v

    def op(self, opname, operands, fn, attrs=None, dtype=None, name=None):
        box = []

        def keep(*a):
            box.append(fn(*a))
            return box[0]
        v = super().op(opname, operands, keep, attrs, dtype, name)
        v.t = v.t.detach()
        if box[0].dtype.is_floating_point:
            v.h = box[0].double()
        return v

    def text(self):
        return super().text().replace("tests/golden/gen.py", "tests/golden/golden_grads.py", 1)

    def tensors(self):
        out = dict(self.inputs)
        out["out0"] = self.rets[0].t
        loss = self.rets[0].h.sum()
        names = list(self.leaves)
        grads = torch.autograd.grad(loss, [self.leaves[n] for n in names], allow_unused=True)
        for n, gr in zip(names, grads):
            if gr is None:
                gr = torch.zeros_like(self.leaves[n])
            out["grad." + n] = gr.detach().to(self.inputs[n].dtype).contiguous()
        return out


def G(name, comment=None):
    return GradGraph(name, comment)


def seq_mask(x, lens, value):
    """kiln's sequence_mask: position k of the last axis becomes value where
    k >= len; len's shape is a prefix of x's."""
    l = lens.reshape(tuple(lens.shape) + (1,) * (x.dim() - lens.dim()))
    k = torch.arange(x.shape[-1])
    return torch.where(k >= l, torch.full_like(x, value), x)


def xent(logits, labels, ignore):
    safe = torch.where(labels == ignore, torch.zeros_like(labels), labels).long()
    nll = torch.logsumexp(logits, -1) - logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(labels == ignore, torch.zeros_like(nll), nll)


def mm(a, b, ta=False, tb=False):
    return torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)


def mm_attrs(ta, tb):
    a = {}
    if ta:
        a["transpose_a"] = True
    if tb:
        a["transpose_b"] = True
    return a


# ---- elementwise --------------------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": torch.pow,
    "max": torch.maximum,
    "min": torch.minimum,
}


@case
def binary_cases():
    out = []
    for op, fn in BINARY.items():
        for dt, n in FLOATS:
            for sa, sb, tag in (((2, 3), (3,), "row"), ((3, 1), (1, 4), "outer")):
                g = G("%s_%s_%s" % (op, tag, n))
                if op == "pow":
                    a, b = pos(*sa, dtype=dt, lo=0.5, hi=2.0), randn(*sb, dtype=dt)
                elif op == "div":
                    a, b = randn(*sa, dtype=dt), pos(*sb, dtype=dt, lo=0.5, hi=2.0)
                else:
                    a, b = randn(*sa, dtype=dt), randn(*sb, dtype=dt)
                x, y = g.arg("a", a), g.arg("b", b)
                g.ret(g.op(op, [x, y], fn))
                out.append(g)
    return out




@case
def unary_cases():
    out = []
    for op, (fn, mk) in UNARY.items():
        for dt, n in FLOATS:
            g = G("%s_%s" % (op, n))
            # The graph multiplies by a second input so the upstream
            # gradient of the op is not all ones.
            x, w = g.arg("x", mk(3, 4, dtype=dt)), g.arg("w", randn(3, 4, dtype=dt))
            g.ret(g.op("mul", [g.op(op, [x], fn), w], lambda a, b: a * b))
            out.append(g)
    for dt, n in FLOATS:
        for approx in ("none", "tanh"):
            g = G("gelu_%s_%s" % (approx, n))
            x = g.arg("x", randn(3, 4, dtype=dt) * 2)
            attrs = {"approximate": "tanh"} if approx == "tanh" else None
            g.ret(g.op("gelu", [x], lambda t: F.gelu(t, approximate=approx), attrs))
            out.append(g)
    return out


@case
def select_cast_cases():
    out = []
    for dt, n in FLOATS:
        g = G("select_" + n, "select(a > 0, a * b, c) with broadcasting")
        a, b, c = g.arg("a", randn(2, 3, dtype=dt)), g.arg("b", randn(3, dtype=dt)), \
            g.arg("c", randn(2, 1, dtype=dt))
        z = g.const(torch.tensor(0.0, dtype=dt), name="zero")
        cond = g.op("cmp_gt", [a, z], lambda p, q: p > q, name="cond")
        ab = g.op("mul", [a, b], lambda p, q: p * q)
        g.ret(g.op("select", [cond, ab, c], torch.where, dtype=dt))
        out.append(g)
    g = G("cast_f32_f64", "the gradient of a cast is cast back")
    x = g.arg("x", randn(2, 3))
    y = g.op("cast", [x], lambda t: t, {"to": "f64"}, dtype=f64)
    g.ret(g.op("mul", [y, y], lambda p, q: p * q))
    out.append(g)
    return out


# ---- reductions and normalisations -------------------------------------------

@case
def reduce_cases():
    out = []
    for dt, n in FLOATS:
        for op, axes, keep in (("sum", [1], False), ("mean", [0, 2], True),
                               ("reduce_max", [-1], False), ("reduce_max", [0, 1], True)):
            g = G("%s_%s_%s%s" % (op, "".join(str(a % 3) for a in axes), "keep_" if keep else "",
                                   n))
            x = g.arg("x", randn(2, 3, 4, dtype=dt))
            fn = {"sum": torch.sum, "mean": torch.mean, "reduce_max": torch.amax}[op]
            attrs = {"axes": axes}
            if keep:
                attrs["keepdims"] = True
            r = g.op(op, [x], lambda t: fn(t, axes, keepdim=keep), attrs)
            g.ret(g.op("mul", [r, r], lambda p, q: p * q))
            out.append(g)
        for op, axis in (("softmax", -1), ("log_softmax", 0)):
            g = G("%s_%s" % (op, n))
            x = g.arg("x", randn(2, 3, 4, dtype=dt) * 2)
            w = g.arg("w", randn(2, 3, 4, dtype=dt))
            fn = torch.softmax if op == "softmax" else torch.log_softmax
            s = g.op(op, [x], lambda t: fn(t, axis), {"axis": axis})
            g.ret(g.op("mul", [s, w], lambda p, q: p * q))
            out.append(g)
        g = G("layernorm_" + n)
        x = g.arg("x", randn(2, 3, 6, dtype=dt))
        gm, bt = g.arg("gamma", randn(6, dtype=dt)), g.arg("beta", randn(6, dtype=dt))
        w = g.arg("w", randn(2, 3, 6, dtype=dt))
        y = g.op("layernorm", [x, gm, bt], lambda t, a, b: F.layer_norm(t, (6,), a, b, 1e-5),
                 {"eps": 1e-5})
        g.ret(g.op("mul", [y, w], lambda p, q: p * q))
        out.append(g)
    return out


# ---- data movement, matmul ----------------------------------------------------

@case
def layout_cases():
    out = []
    for dt, n in FLOATS:
        g = G("layout_" + n, "reshape, transpose, slice, broadcast_to, concat in one graph")
        x = g.arg("x", randn(2, 3, 4, dtype=dt))
        y = g.arg("y", randn(3, 1, dtype=dt))
        w = g.arg("w", randn(4, 6, dtype=dt))
        r = g.op("reshape", [x], lambda t: t.reshape(6, 4), {"shape": [6, 4]})
        t = g.op("transpose", [r], lambda t: t.permute(1, 0), {"perm": [1, 0]})
        s = g.op("slice", [t], lambda t: t[1:3, 2:5], {"starts": [1, 2], "ends": [3, 5]})
        b = g.op("broadcast_to", [y], lambda t: t.expand(2, 3, 3), {"shape": [2, 3, 3]})
        bs = g.op("reshape", [b], lambda t: t.reshape(6, 3), {"shape": [6, 3]})
        c = g.op("concat", [s, bs, s], lambda p, q, u: torch.cat([p, q, u], 0), {"axis": 0})
        g.ret(g.op("mul", [c, c], lambda p, q: p * q))
        out.append(g)
        g = G("gather_" + n, "repeated indices accumulate into the table's gradient")
        tb = g.arg("table", randn(5, 3, dtype=dt))
        ix = g.arg("idx", torch.tensor([[1, 4, 1], [0, 1, 1]], dtype=i32))
        w = g.arg("w", randn(2, 3, 3, dtype=dt))
        e = g.op("gather", [tb, ix], lambda t, i: t[i.long()])
        g.ret(g.op("mul", [e, w], lambda p, q: p * q))
        out.append(g)
    for dt, n in FLOATS:
        for sa, sb, ta, tb in (((3, 4), (4, 2), False, False), ((4, 3), (2, 4), True, True),
                               ((2, 1, 3, 4), (3, 2, 4), False, True),
                               ((1, 4, 3), (2, 4, 2), True, False)):
            g = G("matmul_%s%s_%s_%s" % ("t" if ta else "n", "t" if tb else "n",
                                        "x".join(str(d) for d in sa), n))
            a, b = g.arg("a", randn(*sa, dtype=dt)), g.arg("b", randn(*sb, dtype=dt))
            y = g.op("matmul", [a, b], lambda p, q: mm(p, q, ta, tb), mm_attrs(ta, tb))
            g.ret(g.op("tanh", [y], torch.tanh))
            out.append(g)
    return out


# ---- masking and losses ---------------------------------------------------------

@case
def mask_loss_cases():
    out = []
    for dt, n in FLOATS:
        g = G("sequence_mask_" + n)
        x = g.arg("x", randn(2, 3, 4, dtype=dt))
        ln = g.arg("len", torch.tensor([1, 3], dtype=i32))
        m = g.op("sequence_mask", [x, ln], lambda t, l: seq_mask(t, l, 0.5), {"value": 0.5})
        g.ret(g.op("mul", [m, m], lambda p, q: p * q))
        out.append(g)
        g = G("xent_" + n, "ignore_index = 1")
        lg = g.arg("logits", randn(2, 3, 5, dtype=dt) * 2)
        lb = g.arg("labels", torch.tensor([[0, 1, 4], [1, 2, 3]], dtype=i64))
        w = g.arg("w", randn(2, 3, dtype=dt))
        ls = g.op("softmax_cross_entropy", [lg, lb], lambda t, l: xent(t, l, 1),
                  {"ignore_index": 1})
        g.ret(g.op("mul", [ls, w], lambda p, q: p * q))
        out.append(g)
    return out


# ---- composites ---------------------------------------------------------------------

@case
def mlp():
    out = []
    for dt, n in FLOATS:
        g = G("mlp_" + n, "two layers, tanh, MSE")
        x, t = g.arg("x", randn(4, 3, dtype=dt)), g.arg("target", randn(4, 2, dtype=dt))
        w1, b1 = g.arg("w1", randn(3, 5, dtype=dt)), g.arg("b1", randn(5, dtype=dt))
        w2, b2 = g.arg("w2", randn(5, 2, dtype=dt)), g.arg("b2", randn(2, dtype=dt))
        mul = lambda p, q: p * q  # noqa: E731
        h = g.op("tanh", [g.op("add", [g.op("matmul", [x, w1], torch.matmul), b1],
                               lambda p, q: p + q)], torch.tanh)
        y = g.op("add", [g.op("matmul", [h, w2], torch.matmul), b2], lambda p, q: p + q)
        d = g.op("sub", [y, t], lambda p, q: p - q)
        g.ret(g.op("mean", [g.op("mul", [d, d], mul)], lambda e: e.mean(), {"axes": [0, 1]}))
        out.append(g)
    return out


@case
def attention():
    out = []
    for dt, n in FLOATS:
        g = G("attention_" + n, "d2l DotProductAttention with valid lengths")
        q, k = g.arg("q", randn(2, 3, 4, dtype=dt)), g.arg("k", randn(2, 5, 4, dtype=dt))
        v, ln = g.arg("v", randn(2, 5, 3, dtype=dt)), g.arg("len", torch.tensor([2, 5], dtype=i32))
        s = g.op("matmul", [q, k], lambda p, r: mm(p, r, tb=True), {"transpose_b": True})
        c = g.const(torch.tensor(0.5, dtype=dt), name="scale")
        sc = g.op("mul", [s, c], lambda p, r: p * r)
        m = g.op("sequence_mask", [sc, ln], lambda t, l: seq_mask(t, l, -1e6),
                 {"value": -1000000.0})
        w = g.op("softmax", [m], lambda t: torch.softmax(t, -1), {"axis": -1})
        o = g.op("matmul", [w, v], torch.matmul)
        g.ret(g.op("sin", [o], torch.sin))
        out.append(g)
    return out


@case
def layernorm_block():
    out = []
    for dt, n in FLOATS:
        g = G("layernorm_block_" + n, "AddNorm: layernorm(x + relu(x W))")
        x, w = g.arg("x", randn(2, 3, 4, dtype=dt)), g.arg("w", randn(4, 4, dtype=dt))
        gm, bt = g.arg("gamma", randn(4, dtype=dt)), g.arg("beta", randn(4, dtype=dt))
        r = g.op("relu", [g.op("matmul", [x, w], torch.matmul)], torch.relu)
        s = g.op("add", [x, r], lambda p, q: p + q)
        y = g.op("layernorm", [s, gm, bt], lambda t, a, b: F.layer_norm(t, (4,), a, b, 1e-5),
                 {"eps": 1e-5})
        g.ret(g.op("mul", [y, y], lambda p, q: p * q))
        out.append(g)
    return out


@case
def xent_padding():
    out = []
    for dt, n in FLOATS:
        g = G("xent_padding_" + n, "ignored labels and valid lengths, then the mean")
        x, w = g.arg("x", randn(2, 4, 3, dtype=dt)), g.arg("w", randn(3, 6, dtype=dt))
        lb = g.arg("labels", torch.tensor([[3, 5, 0, 0], [1, 2, 4, 0]], dtype=i32))
        ln = g.arg("len", torch.tensor([2, 3], dtype=i32))
        lg = g.op("matmul", [x, w], torch.matmul)
        ls = g.op("softmax_cross_entropy", [lg, lb], lambda t, l: xent(t, l, 0),
                  {"ignore_index": 0})
        m = g.op("sequence_mask", [ls, ln], lambda t, l: seq_mask(t, l, 0.0), {"value": 0.0})
        g.ret(g.op("mean", [m], lambda t: t.mean(), {"axes": [0, 1]}))
        out.append(g)
    return out


@case
def gru_cell():
    out = []
    for dt, n in FLOATS:
        g = G("gru_cell_" + n, "torch.nn.GRUCell's equations from primitives")
        x, h = g.arg("x", randn(2, 3, dtype=dt)), g.arg("h", randn(2, 4, dtype=dt))
        ws = [g.arg(nm, randn(3, 4, dtype=dt) * 0.5) for nm in ("wr", "wz", "wn")]
        us = [g.arg(nm, randn(4, 4, dtype=dt) * 0.5) for nm in ("ur", "uz", "un")]
        add = lambda p, q: p + q  # noqa: E731
        mul = lambda p, q: p * q  # noqa: E731
        xw = [g.op("matmul", [x, w_], torch.matmul) for w_ in ws]
        hu = [g.op("matmul", [h, u_], torch.matmul) for u_ in us]
        r = g.op("sigmoid", [g.op("add", [xw[0], hu[0]], add)], torch.sigmoid)
        z = g.op("sigmoid", [g.op("add", [xw[1], hu[1]], add)], torch.sigmoid)
        nn_ = g.op("tanh", [g.op("add", [xw[2], g.op("mul", [r, hu[2]], mul)], add)], torch.tanh)
        one = g.const(torch.tensor(1.0, dtype=dt), name="one")
        omz = g.op("sub", [one, z], lambda p, q: p - q)
        hn = g.op("add", [g.op("mul", [omz, nn_], mul), g.op("mul", [z, h], mul)], add)
        g.ret(g.op("mul", [hn, hn], mul))
        out.append(g)
    return out


def main(out_dir=OUT_DIR):
    os.makedirs(out_dir, exist_ok=True)
    graphs = []
    for fn in CASES:
        r = fn()
        graphs.extend(r if isinstance(r, list) else [r])
    names = [g.name for g in graphs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit("golden_grads.py: duplicate case names: %s" % sorted(dup))
    keep = {"cases.txt"}
    for g in graphs:
        for ext, data in ((".kir", g.text().encode()), (".safetensors",
                                                        safetensors_bytes(g.tensors()))):
            with open(os.path.join(out_dir, g.name + ext), "wb") as f:
                f.write(data)
            keep.add(g.name + ext)
    with open(os.path.join(out_dir, "cases.txt"), "w") as f:
        f.write("# gradient golden cases written by tests/golden/golden_grads.py (one per line)\n")
        f.write("".join(n + "\n" for n in sorted(names)))
    for fname in os.listdir(out_dir):
        if fname not in keep and fname.endswith((".kir", ".safetensors")):
            os.remove(os.path.join(out_dir, fname))
    print("wrote %d gradient cases to %s" % (len(graphs), out_dir))


if __name__ == "__main__":
    main()
