"""What the PyTorch comparisons in bench/ (compare_torch.py, repro_nanogpt.py,
d2l_torch.py) share: PyTorch tuned for a small shared machine, the check
that torch is there, one measuring process read back as its last JSON
line, and the torch models that are not the goldens' (nanoGPT's model.py).
"""
import json
import math
import subprocess
import sys
import threading

TORCH_PY = "/usr/bin/python3"

# Read at process start (glibc malloc, libgomp), so they go in the worker's
# environment: busy-waiting OpenMP pools fight over 2 cores, and glibc
# returning freed memory to the OS costs page faults on every step.
TORCH_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "68719476736",
}


def torch_env(base, threads):
    """base (an environ mapping) with TORCH_ENV and the thread counts.
    Debian's torch calls the system BLAS (OpenBLAS): its pool gets the same
    thread count, which torch.set_num_threads does not set."""
    return dict(base, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                **TORCH_ENV)


def tune(torch, threads, seed):
    """In the worker, before building anything: d2l's sqrt(d)-scaled
    attention scores produce denormal softmax outputs that slow OpenBLAS."""
    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def tuned_torch(threads, seed):
    """In a worker: torch, tuned, or None after printing the error as the
    JSON line the driver reads."""
    try:
        import torch
    except ImportError:
        print(json.dumps({"error": "no torch in " + sys.executable}))
        return None
    tune(torch, threads, seed)
    return torch


def torch_available(python):
    """torch's version under python, or None."""
    try:
        p = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def _tee(pipe, tail):
    """Copies pipe to our stderr, keeping its last two non-blank lines."""
    for line in pipe:
        sys.stderr.write(line)
        sys.stderr.flush()
        if line.strip():
            tail[:] = (tail + [line.strip()])[-2:]


def _run_streaming(cmd, env, timeout):
    """subprocess.run for stream_stderr: (returncode, stdout, stderr's
    tail), or raises subprocess.TimeoutExpired."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    tail, killed = [], []
    tee = threading.Thread(target=_tee, args=(p.stderr, tail))
    tee.start()
    timer = threading.Timer(timeout, lambda: (killed.append(1), p.kill()))
    timer.start()
    out = p.stdout.read()
    p.wait()
    timer.cancel()
    tee.join()
    if killed:
        raise subprocess.TimeoutExpired(cmd, timeout)
    return p.returncode, out, " ".join(tail)


def run_json(cmd, env, timeout, need="median_ms", stream_stderr=False):
    """Runs one measuring process; its last stdout line as a dict (which
    must hold the key need), or an error dict. stream_stderr copies the
    process's progress lines to our stderr as they come."""
    try:
        if stream_stderr:
            rc, out, err = _run_streaming(cmd, env, timeout)
        else:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            rc, out, err = p.returncode, p.stdout, (p.stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % timeout}
    except OSError as e:
        return {"error": str(e)}
    lines = out.strip().splitlines()
    try:
        r = json.loads(lines[-1]) if lines else {}
    except ValueError:
        r = {}
    if not isinstance(r, dict):
        r = {}
    if rc != 0 or need not in r:
        return {"error": r.get("error") or err or "exit %d" % rc}
    return r


def fill_masked_softmax(torch):
    """d2l.masked_softmax (1-D lengths per row, 2-D per query) with
    masked_fill: the same values without boolean-index assignment."""
    def masked_softmax(X, valid_lens):
        if valid_lens is None:
            return torch.softmax(X, dim=-1)
        shape = X.shape
        if valid_lens.dim() == 1:
            valid_lens = torch.repeat_interleave(valid_lens, shape[1])
        else:
            valid_lens = valid_lens.reshape(-1)
        X = X.reshape(-1, shape[-1])
        mask = torch.arange(shape[-1])[None, :] < valid_lens[:, None]
        return torch.softmax(X.masked_fill(~mask, -1e6).reshape(shape), dim=-1)
    return masked_softmax


def nanogpt(torch, c):
    """nanoGPT's model.py (torch < 2.0 path: explicit causal attention),
    tied head, dropout where nanoGPT has it; c["bias"] (default True) is
    nanoGPT's config.bias: False drops the Linear biases and keeps only
    LayerNorm's weight (its LayerNorm class)."""
    nn, F = torch.nn, torch.nn.functional
    C, H, T = c["embed"], c["heads"], c["block"]
    bias = c.get("bias", True)

    class LayerNorm(nn.Module):
        def __init__(self, ndim):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(ndim))
            self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=bias)
            self.c_proj = nn.Linear(C, C, bias=bias)
            self.attn_dropout, self.resid_dropout = nn.Dropout(c["dropout"]), nn.Dropout(
                c["dropout"])
            self.register_buffer("bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

        def forward(self, x):
            B, t, _ = x.size()
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (z.view(B, t, H, C // H).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
            att = self.attn_dropout(F.softmax(att, dim=-1))
            y = (att @ v).transpose(1, 2).contiguous().view(B, t, C)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc, self.gelu = nn.Linear(C, 4 * C, bias=bias), nn.GELU()
            self.c_proj, self.dropout = nn.Linear(4 * C, C, bias=bias), nn.Dropout(c["dropout"])

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = LayerNorm(C), CausalSelfAttention()
            self.ln_2, self.mlp = LayerNorm(C), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(c["vocab"], C), wpe=nn.Embedding(T, C),
                drop=nn.Dropout(c["dropout"]), h=nn.ModuleList([Block() for _ in range(
                    c["layers"])]), ln_f=LayerNorm(C)))
            self.lm_head = nn.Linear(C, c["vocab"], bias=False)
            self.transformer.wte.weight = self.lm_head.weight
            for n, p in self.named_parameters():
                if n.endswith("c_proj.weight"):
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c["layers"]))
                elif p.dim() == 2:
                    nn.init.normal_(p, 0.0, 0.02)
                elif n.endswith("bias") and ".ln_" not in n:
                    nn.init.zeros_(p)

        def forward(self, idx, targets):
            pos = torch.arange(0, idx.size(1), dtype=torch.long)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    return GPT()


def machine():
    """The CPU model from /proc/cpuinfo, or "unknown CPU"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"
