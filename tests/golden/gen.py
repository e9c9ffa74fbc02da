#!/usr/bin/python3
"""Generates kiln's per-op golden cases from PyTorch.

Run with Debian's interpreter explicitly (it has python3-torch 1.13; the
`python3` on PATH may be a pyenv without torch):

    /usr/bin/python3 tests/golden/gen.py

For each case it writes tests/golden/ops/<case>.kir (a graph in the IR text
format of DESIGN.md, canonical spacing) and tests/golden/ops/<case>.safetensors
holding the graph's inputs (named as its arguments, without '%') and the
expected outputs out0, out1, ... computed by PyTorch. It also writes
tests/golden/ops/cases.txt, the list of cases, which tests/test_ref_golden.c
checks against the directory.

Expected values: every node is evaluated by PyTorch in float64 on the
float64 images of its (already rounded) operands, then rounded once to the
node's dtype. That is the reference interpreter's contract (compute in
double, store to the result dtype), so f32 comparisons can be tight.

Deterministic: each case seeds torch from a CRC of its name, so adding a
case does not change the others. safetensors are written by hand (Debian has
no safetensors package): 8-byte little-endian header length, JSON header
padded with spaces to a multiple of 8, raw little-endian data.
"""
import math
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("gen.py needs PyTorch: run it with Debian's /usr/bin/python3 "
             "(package python3-torch), not a python without torch")

from golden_lib import (CASES, UNARY, DT, FLOATS, INTS, Graph, b8, case, f32, f64, i32, i64, ints,
                        pos, randn, safetensors_bytes)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops")

# ---- binary elementwise -----------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: torch.pow(a, b),
    "max": lambda a, b: torch.maximum(a, b),
    "min": lambda a, b: torch.minimum(a, b),
}


def binary_case(op, dt, sa, sb, tag):
    g = Graph("%s_%s" % (op, tag))
    if op == "pow":
        a, b = pos(*sa, dtype=dt), randn(*sb, dtype=dt)
    elif op == "div":
        a, b = randn(*sa, dtype=dt), pos(*sb, dtype=dt) * torch.where(
            torch.rand(tuple(sb)) < 0.5, -1.0, 1.0).to(dt)
    else:
        a, b = randn(*sa, dtype=dt), randn(*sb, dtype=dt)
    x, y = g.arg("a", a), g.arg("b", b)
    g.ret(g.op(op, [x, y], BINARY[op]))
    return g


for _op in BINARY:
    for _dt, _n in FLOATS:
        case(lambda op=_op, dt=_dt, n=_n: binary_case(op, dt, (2, 3), (2, 3), n))

# broadcasting: scalar, [3,1] x [1,4], [4] x [2,3,4]
for _op in ("add", "sub", "mul", "div", "pow", "max"):
    case(lambda op=_op: binary_case(op, f32, (2, 3), (), "scalar_f32"))
    case(lambda op=_op: binary_case(op, f32, (3, 1), (1, 4), "outer_f32"))
    case(lambda op=_op: binary_case(op, f64, (4,), (2, 3, 4), "rank_f64"))


@case
def max_min_nan():
    g = Graph("max_min_nan_f32", "NaN propagates through max and min, as torch.maximum")
    a, b = randn(2, 3), randn(2, 3)
    a[0, 1] = float("nan")
    b[1, 2] = float("nan")
    x, y = g.arg("a", a), g.arg("b", b)
    g.ret(g.op("max", [x, y], BINARY["max"]), g.op("min", [x, y], BINARY["min"]))
    return g


INT_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "max": lambda a, b: torch.maximum(a, b),
    "min": lambda a, b: torch.minimum(a, b),
    "div": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
}

for _op in INT_BINARY:
    for _dt, _n in INTS:
        def _int_case(op=_op, dt=_dt, n=_n):
            g = Graph("%s_%s" % (op, n), "integer division truncates toward zero" if op == "div"
                      else None)
            a, b = ints(2, 3, dtype=dt), ints(2, 3, dtype=dt)
            if op == "div":
                b = torch.where(b == 0, torch.ones_like(b) * 3, b)
            x, y = g.arg("a", a), g.arg("b", b)
            g.ret(g.op(op, [x, y], INT_BINARY[op]))
            return g
        case(_int_case)


@case
def add_i64_bcast():
    g = Graph("add_i64_outer")
    x, y = g.arg("a", ints(3, 1, dtype=i64)), g.arg("b", ints(1, 4, dtype=i64))
    g.ret(g.op("add", [x, y], INT_BINARY["add"]))
    return g


# ---- comparisons and select --------------------------------------------------

CMP = {
    "cmp_lt": lambda a, b: a < b,
    "cmp_le": lambda a, b: a <= b,
    "cmp_gt": lambda a, b: a > b,
    "cmp_ge": lambda a, b: a >= b,
    "cmp_eq": lambda a, b: a == b,
}

for _op in CMP:
    def _cmp_f32(op=_op):
        g = Graph(op + "_f32", "NaN compares false; some elements are equal")
        a, b = randn(3, 4), randn(3, 4)
        b[0, :2] = a[0, :2]
        a[1, 1] = float("nan")
        b[2, 3] = float("nan")
        x, y = g.arg("a", a), g.arg("b", b)
        g.ret(g.op(op, [x, y], CMP[op]))
        return g

    def _cmp_int(op=_op):
        out = []
        for dt, n in INTS + [(f64, "f64")]:
            g = Graph("%s_%s" % (op, n))
            a = ints(2, 5, dtype=dt, lo=-3, hi=3)
            b = ints(2, 5, dtype=dt, lo=-3, hi=3)
            x, y = g.arg("a", a), g.arg("b", b)
            g.ret(g.op(op, [x, y], CMP[op]))
            out.append(g)
        return out

    def _cmp_bcast(op=_op):
        g = Graph(op + "_outer_f32")
        a = torch.tensor([[-1.0], [0.0], [2.0]])
        b = torch.tensor([[-1.0, 0.0, 1.0, 2.0]])
        x, y = g.arg("a", a), g.arg("b", b)
        g.ret(g.op(op, [x, y], CMP[op]))
        return g
    case(_cmp_f32)
    case(_cmp_int)
    case(_cmp_bcast)


@case
def select_cases():
    out = []
    g = Graph("select_f32", "broadcasting: c [3,1], a [1,4], b scalar")
    c, a, b = g.arg("c", torch.tensor([[True], [False], [True]])), g.arg("a", randn(1, 4)), \
        g.arg("b", randn())
    g.ret(g.op("select", [c, a, b], lambda c, a, b: torch.where(c, a, b), dtype=f32))
    out.append(g)
    for dt, n in [(f64, "f64"), (i64, "i64"), (i32, "i32")]:
        g = Graph("select_" + n)
        c = g.arg("c", torch.rand(2, 3) < 0.5)
        a = g.arg("a", ints(2, 3, dtype=dt) if not dt.is_floating_point else randn(2, 3, dtype=dt))
        b = g.arg("b", ints(2, 3, dtype=dt) if not dt.is_floating_point else randn(2, 3, dtype=dt))
        g.ret(g.op("select", [c, a, b], lambda c, a, b: torch.where(c, a, b), dtype=dt))
        out.append(g)
    return out


# ---- unary ------------------------------------------------------------------


for _op in UNARY:
    for _dt, _n in FLOATS:
        def _unary(op=_op, dt=_dt, n=_n):
            fn, mk = UNARY[op]
            g = Graph("%s_%s" % (op, n))
            v = mk(2, 4, dtype=dt)
            if op == "relu" and dt == f32:
                v[0, 0] = float("nan")  # relu keeps NaN
            g.ret(g.op(op, [g.arg("x", v)], fn))
            return g
        case(_unary)

for _op in ("neg", "abs", "relu"):
    for _dt, _n in INTS:
        def _unary_int(op=_op, dt=_dt, n=_n):
            g = Graph("%s_%s" % (op, n))
            g.ret(g.op(op, [g.arg("x", ints(2, 4, dtype=dt))], UNARY[op][0]))
            return g
        case(_unary_int)

for _dt, _n in FLOATS:
    def _gelu(dt=_dt, n=_n):
        g1 = Graph("gelu_" + n, "exact erf form (approximate = \"none\", the default)")
        g1.ret(g1.op("gelu", [g1.arg("x", randn(3, 4, dtype=dt) * 2)], F.gelu))
        g2 = Graph("gelu_tanh_" + n)
        g2.ret(g2.op("gelu", [g2.arg("x", randn(3, 4, dtype=dt) * 2)],
                     lambda x: F.gelu(x, approximate="tanh"), {"approximate": "tanh"}))
        return [g1, g2]
    case(_gelu)


def gelu_grad(x, approximate="none"):
    """d gelu(x)/dx by autograd: the gradient of gelu with ones upstream."""
    x = x.detach().clone().requires_grad_(True)
    F.gelu(x, approximate=approximate).backward(torch.ones_like(x))
    return x.grad


for _dt, _n in FLOATS:
    def _gelu_deriv(dt=_dt, n=_n):
        g1 = Graph("gelu_deriv_" + n, "torch autograd of gelu (exact erf form) on ones")
        g1.ret(g1.op("gelu_deriv", [g1.arg("x", randn(3, 5, dtype=dt) * 2)], gelu_grad))
        g2 = Graph("gelu_deriv_tanh_" + n, "torch autograd of gelu(approximate=\"tanh\") on ones")
        g2.ret(g2.op("gelu_deriv", [g2.arg("x", randn(3, 5, dtype=dt) * 2)],
                     lambda x: gelu_grad(x, "tanh"), {"approximate": "tanh"}))
        return [g1, g2]
    case(_gelu_deriv)


# ---- cast --------------------------------------------------------------------

def cast_case(frm, to, mk):
    g = Graph("cast_%s_%s" % (DT[frm], DT[to]))
    x = g.arg("x", mk().to(frm))
    g.ret(g.op("cast", [x], lambda v: v.to(to), {"to": DT[to]}, dtype=to))
    return g


def _mixed():
    v = randn(3, 4) * 10
    v[0, 0], v[1, 1], v[2, 2] = 0.0, -0.5, 2.75
    return v


for _frm, _to, _mk in [
        (f32, f64, _mixed), (f64, f32, lambda: randn(3, 4, dtype=f64)),
        (f32, i32, _mixed), (f32, i64, _mixed), (f64, i32, _mixed),
        (i32, f32, lambda: ints(3, 4)), (i64, f64, lambda: ints(3, 4, dtype=i64)),
        (i64, i32, lambda: ints(3, 4, dtype=i64, lo=-1000, hi=1000)),
        (i32, i64, lambda: ints(3, 4)),
        (f32, b8, _mixed), (i32, b8, lambda: ints(3, 4, lo=-2, hi=2)),
        (b8, f32, lambda: torch.rand(3, 4) < 0.5), (b8, i64, lambda: torch.rand(3, 4) < 0.5)]:
    case(lambda frm=_frm, to=_to, mk=_mk: cast_case(frm, to, mk))


@case
def dropout_eval():
    g = Graph("dropout_eval_f32", "dropout in eval mode (the golden runner's default) is the "
              "identity")
    g.ret(g.op("dropout", [g.arg("x", randn(3, 4))], lambda x: x, {"p": 0.5}))
    return g


# ---- reductions ----------------------------------------------------------------

REDUCE = {"sum": torch.sum, "mean": torch.mean, "reduce_max": torch.amax}

for _op in REDUCE:
    for _dt, _n in FLOATS:
        for _axes, _keep, _tag in [([1], False, "ax1"), ([0, 2], False, "ax02"),
                                   ([-1], True, "last_keep"), ([0, 1, 2], False, "all"),
                                   ([0, 2], True, "ax02_keep")]:
            def _red(op=_op, dt=_dt, n=_n, axes=_axes, keep=_keep, tag=_tag):
                g = Graph("%s_%s_%s" % (op, tag, n))
                x = g.arg("x", randn(2, 3, 4, dtype=dt))
                attrs = {"axes": axes}
                if keep:
                    attrs["keepdims"] = True
                g.ret(g.op(op, [x], lambda v: REDUCE[op](v, dim=axes, keepdim=keep), attrs))
                return g
            case(_red)

for _op in ("sum", "reduce_max"):
    for _dt, _n in INTS:
        def _red_int(op=_op, dt=_dt, n=_n):
            g = Graph("%s_ax1_%s" % (op, n))
            x = g.arg("x", ints(2, 3, 4, dtype=dt))
            g.ret(g.op(op, [x], lambda v: REDUCE[op](v, dim=[1]), {"axes": [1]}))
            return g
        case(_red_int)


# ---- softmax, log_softmax, layernorm ------------------------------------------

for _op, _fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    for _dt, _n in FLOATS:
        for _axis in (-1, 0, 1):
            def _sm(op=_op, fn=_fn, dt=_dt, n=_n, axis=_axis):
                g = Graph("%s_ax%s_%s" % (op, str(axis).replace("-", "m"), n))
                x = g.arg("x", randn(2, 3, 4, dtype=dt) * 3)
                g.ret(g.op(op, [x], lambda v: fn(v, dim=axis), {"axis": axis}))
                return g
            case(_sm)


@case
def softmax_large():
    g = Graph("softmax_large_f32", "large logits: a stable softmax subtracts the max first")
    x = g.arg("x", torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]]))
    g.ret(g.op("softmax", [x], lambda v: torch.softmax(v, -1), {"axis": -1}),
          g.op("log_softmax", [x], lambda v: torch.log_softmax(v, -1), {"axis": -1}))
    return g


for _dt, _n in FLOATS:
    def _ln(dt=_dt, n=_n):
        g = Graph("layernorm_" + n)
        x = g.arg("x", randn(2, 3, 5, dtype=dt) * 2 + 1)
        gm = g.arg("gamma", randn(5, dtype=dt))
        bt = g.arg("beta", randn(5, dtype=dt))
        g.ret(g.op("layernorm", [x, gm, bt],
                   lambda v, w, b: F.layer_norm(v, (5,), w, b, eps=1e-5), {"eps": 1e-5}))
        g2 = Graph("layernorm_eps_" + n)
        x = g2.arg("x", randn(4, 6, dtype=dt))
        gm = g2.arg("gamma", pos(6, dtype=dt))
        bt = g2.arg("beta", randn(6, dtype=dt))
        g2.ret(g2.op("layernorm", [x, gm, bt],
                     lambda v, w, b: F.layer_norm(v, (6,), w, b, eps=0.01), {"eps": 0.01}))
        return [g, g2]
    case(_ln)


# ---- data movement ------------------------------------------------------------------

@case
def layout_cases():
    out = []
    for dt, n in [(f32, "f32"), (i64, "i64")]:
        mk = (lambda *s: randn(*s)) if dt == f32 else (lambda *s: ints(*s, dtype=i64))
        g = Graph("reshape_" + n)
        x = g.arg("x", mk(2, 3, 4))
        g.ret(g.op("reshape", [x], lambda v: v.reshape(4, 6), {"shape": [4, 6]}))
        out.append(g)
        g = Graph("transpose_" + n)
        x = g.arg("x", mk(2, 3, 4))
        g.ret(g.op("transpose", [x], lambda v: v.permute(0, 2, 1), {"perm": [0, 2, 1]}),
              g.op("transpose", [x], lambda v: v.permute(2, 0, 1), {"perm": [2, 0, 1]}))
        out.append(g)
        g = Graph("broadcast_to_" + n)
        x = g.arg("x", mk(3))
        y = g.arg("y", mk(3, 1))
        g.ret(g.op("broadcast_to", [x], lambda v: v.expand(2, 3), {"shape": [2, 3]}),
              g.op("broadcast_to", [y], lambda v: v.expand(2, 3, 4), {"shape": [2, 3, 4]}))
        out.append(g)
        g = Graph("slice_" + n)
        x = g.arg("x", mk(3, 5, 4))
        g.ret(g.op("slice", [x], lambda v: v[1:3, 0:5, 1:2],
                   {"starts": [1, 0, 1], "ends": [3, 5, 2]}))
        out.append(g)
        g = Graph("concat_" + n)
        a, b, c = g.arg("a", mk(2, 3)), g.arg("b", mk(1, 3)), g.arg("c", mk(2, 2))
        g.ret(g.op("concat", [a, b], lambda u, v: torch.cat([u, v], 0), {"axis": 0}),
              g.op("concat", [a, c, a], lambda u, v, w: torch.cat([u, v, w], -1), {"axis": -1}))
        out.append(g)
    for idt, n in INTS:
        g = Graph("gather_" + n)
        t = g.arg("table", randn(5, 3))
        i = g.arg("idx", torch.tensor([[4, 0], [2, 2]], dtype=idt))
        g.ret(g.op("gather", [t, i], lambda t, i: t[i.long()]))
        out.append(g)
    g = Graph("gather_table_i64")
    t = g.arg("table", ints(6, 2, 2, dtype=i64))
    i = g.arg("idx", torch.tensor([5, 0, 3], dtype=i32))
    g.ret(g.op("gather", [t, i], lambda t, i: t[i.long()]))
    out.append(g)
    return out


def index_add(idx, src, rows):
    """scatter_add as torch's index_add_ into a zero [rows, ...] table."""
    tail = src.shape[idx.dim():]
    out = torch.zeros((rows,) + tuple(tail), dtype=src.dtype)
    return out.index_add_(0, idx.reshape(-1).long(), src.reshape((-1,) + tuple(tail)))


@case
def scatter_add_cases():
    g = Graph("scatter_add_f32", "repeated indices sum; rows 1 and 4 get nothing (zeros)")
    i = g.arg("idx", torch.tensor([[2, 0, 2], [3, 2, 0]], dtype=i32))
    src = g.arg("src", randn(2, 3, 4))
    g.ret(g.op("scatter_add", [i, src], lambda a, b: index_add(a, b, 5), {"rows": 5},
               dtype=f32))
    g2 = Graph("scatter_add_f64", "i64 indices, trailing dims [2, 3], repeated indices")
    i = g2.arg("idx", torch.tensor([1, 3, 1, 1, 0, 3], dtype=i64))
    src = g2.arg("src", randn(6, 2, 3, dtype=f64))
    g2.ret(g2.op("scatter_add", [i, src], lambda a, b: index_add(a, b, 4), {"rows": 4},
                 dtype=f64))
    return [g, g2]


@case
def iota_cases():
    out = []
    for shape, axis, dt in [([3, 4], 1, i32), ([3, 4], 0, i64), ([2, 3, 2], -1, f32),
                            ([5], 0, i32)]:
        g = Graph("iota_%s_ax%s" % (DT[dt], str(axis).replace("-", "m")),
                  "value = index along axis, as torch.arange broadcast along it")

        def fn(shape=shape, axis=axis):
            ax = axis % len(shape)
            view = [1] * len(shape)
            view[ax] = shape[ax]
            return torch.arange(shape[ax]).reshape(view).expand(shape)
        r = fn()
        g.ret(g.op("iota", [], lambda: r, {"shape": shape, "axis": axis, "dtype": DT[dt]},
                   dtype=dt))
        out.append(g)
    return out


@case
def const_cases():
    g = Graph("const_f32", "a dense const and a scalar const")
    x = g.arg("x", randn(4))
    c = g.const(torch.tensor([0.5, -1.25, 2.0, 3.0]))
    s = g.const(torch.tensor(2.5))
    y = g.op("mul", [x, c], lambda a, b: a * b)
    g.ret(g.op("add", [y, s], lambda a, b: a + b), c)
    g2 = Graph("const_i64")
    x = g2.arg("x", ints(3, dtype=i64))
    c = g2.const(torch.tensor([7, -2, 100], dtype=i64))
    g2.ret(g2.op("sub", [x, c], lambda a, b: a - b))
    return [g, g2]


# ---- matmul -------------------------------------------------------------------

def mm(a, b, ta=False, tb=False):
    return torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)


for _dt, _n in FLOATS:
    for _sa, _sb, _ta, _tb, _tag in [((3, 4), (4, 5), False, False, "plain"),
                                     ((4, 3), (4, 5), True, False, "ta"),
                                     ((3, 4), (5, 4), False, True, "tb"),
                                     ((4, 3), (5, 4), True, True, "tab"),
                                     ((2, 1, 3, 4), (3, 4, 2), False, False, "batch_bcast"),
                                     ((2, 4, 3), (6, 4), True, True, "batch_tab")]:
        def _mm(dt=_dt, n=_n, sa=_sa, sb=_sb, ta=_ta, tb=_tb, tag=_tag):
            g = Graph("matmul_%s_%s" % (tag, n))
            a, b = g.arg("a", randn(*sa, dtype=dt)), g.arg("b", randn(*sb, dtype=dt))
            attrs = {}
            if ta:
                attrs["transpose_a"] = True
            if tb:
                attrs["transpose_b"] = True
            g.ret(g.op("matmul", [a, b], lambda x, y: mm(x, y, ta, tb), attrs))
            return g
        case(_mm)


# ---- masking, loss, attention --------------------------------------------------

def d2l_sequence_mask(X, valid_len, value):
    """d2l.sequence_mask: X [N, K], valid_len [N]."""
    maxlen = X.size(1)
    mask = torch.arange(maxlen, dtype=torch.float32)[None, :] < valid_len[:, None]
    X = X.clone()
    X[~mask] = value
    return X


def d2l_mask(X, valid_lens, value):
    """The masking step of d2l.masked_softmax: [B] lengths repeat over the
    queries, [B, Q] lengths are per query."""
    shape = X.shape
    if valid_lens.dim() == 1:
        valid_lens = torch.repeat_interleave(valid_lens, shape[1])
    else:
        valid_lens = valid_lens.reshape(-1)
    return d2l_sequence_mask(X.reshape(-1, shape[-1]), valid_lens, value).reshape(shape)


@case
def seqmask_cases():
    out = []
    for lens, ldt, tag in [([1, 3], i32, "B"), ([[2, 4, 0], [1, 4, 3]], i64, "BQ")]:
        for dt, n in FLOATS:
            g = Graph("sequence_mask_%s_%s" % (tag, n))
            x = g.arg("x", randn(2, 3, 4, dtype=dt))
            ln = g.arg("len", torch.tensor(lens, dtype=ldt))
            m = g.op("sequence_mask", [x, ln], lambda v, l: d2l_mask(v, l, -1e6),
                     {"value": -1000000.0}, name="m")
            g.ret(m)
            out.append(g)
        g = Graph("masked_softmax_" + tag, "d2l's masked_softmax: sequence_mask then softmax")
        x = g.arg("x", randn(2, 3, 4))
        ln = g.arg("len", torch.tensor(lens, dtype=ldt))
        m = g.op("sequence_mask", [x, ln], lambda v, l: d2l_mask(v, l, -1e6),
                 {"value": -1000000.0}, name="m")
        g.ret(g.op("softmax", [m], lambda v: torch.softmax(v, -1), {"axis": -1}, name="w"))
        out.append(g)
    g = Graph("sequence_mask_zero_f32", "value 0 and a rank-2 x with [B] lengths")
    x = g.arg("x", randn(3, 5))
    ln = g.arg("len", torch.tensor([5, 0, 2], dtype=i32))
    g.ret(g.op("sequence_mask", [x, ln], lambda v, l: d2l_sequence_mask(v, l, 0.0),
               {"value": 0.0}))
    out.append(g)
    return out


def xent(logits, labels, ignore):
    v = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, v), labels.reshape(-1).long(), reduction="none",
                           ignore_index=ignore).reshape(labels.shape)


@case
def xent_cases():
    g = Graph("softmax_cross_entropy_f32", "positions labelled ignore_index give 0")
    lg = g.arg("logits", randn(2, 3, 5) * 2)
    lb = g.arg("labels", torch.tensor([[0, 4, -1], [2, -1, 1]], dtype=i64))
    g.ret(g.op("softmax_cross_entropy", [lg, lb], lambda a, b: xent(a, b, -1),
               {"ignore_index": -1}))
    g2 = Graph("softmax_cross_entropy_f64")
    lg = g2.arg("logits", randn(4, 6, dtype=f64) * 3)
    lb = g2.arg("labels", torch.tensor([5, 2, 0, 2], dtype=i32))
    g2.ret(g2.op("softmax_cross_entropy", [lg, lb], lambda a, b: xent(a, b, 2),
                 {"ignore_index": 2}))
    return [g, g2]


@case
def attention():
    g = Graph("attention", "DESIGN.md's attention graph end to end (d2l DotProductAttention)")
    q = g.arg("q", randn(2, 4, 8))
    k = g.arg("k", randn(2, 6, 8))
    v = g.arg("v", randn(2, 6, 8))
    ln = g.arg("len", torch.tensor([2, 6], dtype=i32))
    kt = g.op("transpose", [k], lambda t: t.permute(0, 2, 1), {"perm": [0, 2, 1]}, name="kt")
    s = g.op("matmul", [q, kt], torch.matmul, name="s")
    c = g.const(torch.tensor(1 / math.sqrt(8), dtype=f32), name="c")
    sc = g.op("mul", [s, c], lambda a, b: a * b, name="sc")
    m = g.op("sequence_mask", [sc, ln], lambda a, l: d2l_mask(a, l, -1e6),
             {"value": -1000000.0}, name="m")
    w = g.op("softmax", [m], lambda a: torch.softmax(a, -1), {"axis": -1}, name="w")
    g.ret(g.op("matmul", [w, v], torch.matmul, name="o"))
    return g


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    graphs = []
    for fn in CASES:
        r = fn()
        graphs.extend(r if isinstance(r, list) else [r])
    names = [g.name for g in graphs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit("gen.py: duplicate case names: %s" % sorted(dup))
    keep = set()
    for g in graphs:
        tensors = dict(g.inputs)
        for i, v in enumerate(g.rets):
            tensors["out%d" % i] = v.t
        blob = safetensors_bytes(tensors)
        text = g.text()
        for ext, data in ((".kir", text.encode()), (".safetensors", blob)):
            with open(os.path.join(OUT_DIR, g.name + ext), "wb") as f:
                f.write(data)
            keep.add(g.name + ext)
        if len(blob) > 4096:
            print("warning: %s.safetensors is %d bytes" % (g.name, len(blob)), file=sys.stderr)
    with open(os.path.join(OUT_DIR, "cases.txt"), "w") as f:
        f.write("# golden cases written by tests/golden/gen.py (one per line)\n")
        f.write("".join(n + "\n" for n in sorted(names)))
    keep.add("cases.txt")
    for fname in os.listdir(OUT_DIR):
        if fname not in keep and fname.endswith((".kir", ".safetensors")):
            os.remove(os.path.join(OUT_DIR, fname))
    print("wrote %d cases to %s" % (len(graphs), OUT_DIR))
    # The training goldens live in their own modules and directories.
    import golden_gpt
    import golden_grads
    import golden_nw
    import golden_optim
    import golden_s2s
    import golden_transformer
    golden_grads.main()
    golden_optim.main()
    golden_nw.main()
    golden_s2s.main()
    golden_transformer.main()
    golden_gpt.main()


if __name__ == "__main__":
    main()
