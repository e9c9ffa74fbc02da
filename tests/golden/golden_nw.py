#!/usr/bin/python3
"""PyTorch golden for kiln's nw-kernel model: d2l section 11.2 ("Attention
Pooling by Similarity", 10.2 in older editions), run exactly as the book does.

    /usr/bin/python3 tests/golden/golden_nw.py

writes tests/golden/nw/nw_kernel.safetensors with the book's data (torch
seeded with SEED), the initial w (torch.rand, as nn.Parameter(torch.rand(1))),
the loss printed at each of the 5 epochs (SGD lr 0.5, loss l.sum() of
nn.MSELoss(reduction='none'), one full-batch step per epoch, leave-one-out
keys and values), the final w, and the test-set predictions of the Gaussian
kernel and of the trained model with its attention weights.
tests/test_nw_kernel.c trains kiln's model from the same data and w0 and
compares. Deterministic: rerunning rewrites identical bytes.
"""
import os
import sys

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("golden_nw.py needs PyTorch: run it with Debian's /usr/bin/python3")

from golden_lib import safetensors_bytes

SEED = 1234
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nw")


class NWKernelRegression(nn.Module):
    """d2l's NWKernelRegression, verbatim in substance."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.rand((1,), requires_grad=True))

    def forward(self, queries, keys, values):
        queries = queries.repeat_interleave(keys.shape[1]).reshape((-1, keys.shape[1]))
        self.attention_weights = nn.functional.softmax(
            -((queries - keys) * self.w)**2 / 2, dim=1)
        return torch.bmm(self.attention_weights.unsqueeze(1), values.unsqueeze(-1)).reshape(-1)


def f(x):
    return 2 * torch.sin(x) + x**0.8


def main(out_dir=OUT_DIR):
    torch.manual_seed(SEED)
    n_train = 50
    x_train, _ = torch.sort(torch.rand(n_train) * 5)
    y_train = f(x_train) + torch.normal(0.0, 0.5, (n_train,))
    x_test = torch.arange(0, 5, 0.1)
    y_truth = f(x_test)
    n_test = len(x_test)

    # Non-parametric attention pooling (the Gaussian kernel, w = 1).
    x_repeat = x_test.repeat_interleave(n_train).reshape((-1, n_train))
    attn_gauss = nn.functional.softmax(-(x_repeat - x_train)**2 / 2, dim=1)
    pred_gauss = torch.matmul(attn_gauss, y_train)

    # Leave-one-out keys and values: each training point attends to the others.
    x_tile = x_train.repeat((n_train, 1))
    y_tile = y_train.repeat((n_train, 1))
    off_diag = (1 - torch.eye(n_train)).type(torch.bool)
    keys = x_tile[off_diag].reshape((n_train, -1))
    values = y_tile[off_diag].reshape((n_train, -1))

    net = NWKernelRegression()
    w0 = net.w.detach().clone()
    loss = nn.MSELoss(reduction='none')
    trainer = torch.optim.SGD(net.parameters(), lr=0.5)
    losses = []
    for epoch in range(5):
        trainer.zero_grad()
        l = loss(net(x_train, keys, values), y_train)
        l.sum().backward()
        trainer.step()
        losses.append(float(l.sum()))
        print(f'epoch {epoch + 1}, loss {float(l.sum()):.6f}')
    print('w0 %.6f -> w %.6f' % (float(w0), float(net.w)))

    keys = x_train.repeat((n_test, 1))
    values = y_train.repeat((n_test, 1))
    with torch.no_grad():
        pred_param = net(x_test, keys, values)
    attn_param = net.attention_weights.detach()

    tensors = {
        "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_truth": y_truth,
        "w0": w0, "losses": torch.tensor(losses, dtype=torch.float32),
        "w": net.w.detach().clone(),
        "pred_gaussian": pred_gauss, "pred_param": pred_param, "attn_param": attn_param,
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "nw_kernel.safetensors"), "wb") as fh:
        fh.write(safetensors_bytes({k: v.contiguous() for k, v in tensors.items()}))
    print("wrote %s" % os.path.join(out_dir, "nw_kernel.safetensors"))


if __name__ == "__main__":
    main()
