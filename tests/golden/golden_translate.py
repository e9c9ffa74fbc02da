"""What the translation models' goldens (golden_s2s.py,
golden_transformer.py) share: d2l's MaskedSoftmaxCELoss, the padded batch
they train on, and one iteration of d2l's train_seq2seq (summed loss,
backward, clipping, Adam) recorded as the tensors tests/support/model_golden.h
reads: cfg.*, the inputs, the weights, loss, attn, grad.NAME, grad_norm and
adam.NAME."""
import sys

import torch
from torch import nn

PAD, BOS, EOS = 1, 2, 3  # d2l's Vocab order: <unk> 0, then reserved tokens
LR, CLIP = 0.005, 1.0


class MaskedSoftmaxCELoss(nn.CrossEntropyLoss):
    """d2l's: per-token cross-entropy, 0 at or past valid_len, mean over T."""

    def forward(self, pred, label, valid_len):
        mask = torch.arange(label.size(1))[None, :] < valid_len[:, None]
        weights = mask.to(pred.dtype)
        self.reduction = "none"
        unweighted = super().forward(pred.permute(0, 2, 1), label)
        return (unweighted * weights).mean(dim=1)


def make_batch(gen, c):
    """Sources: random words, <eos>, then <pad>; targets likewise, and the
    decoder input is <bos> followed by the target shifted right."""
    B, Ts, Tt = c["batch"], c["src_steps"], c["tgt_steps"]
    src_len = torch.tensor([5, 3, 2], dtype=torch.int64)
    tgt_len = torch.tensor([4, 2, 0], dtype=torch.int64)
    assert len(src_len) == B and int(src_len.max()) <= Ts and int(tgt_len.max()) <= Tt
    src = torch.full((B, Ts), PAD, dtype=torch.int64)
    tgt = torch.full((B, Tt), PAD, dtype=torch.int64)
    for b in range(B):
        n = int(src_len[b])
        src[b, :n - 1] = torch.randint(4, c["src_vocab"], (n - 1,), generator=gen)
        src[b, n - 1] = EOS
        n = int(tgt_len[b])
        if n:
            tgt[b, :n - 1] = torch.randint(4, c["tgt_vocab"], (n - 1,), generator=gen)
            tgt[b, n - 1] = EOS
    dec_in = torch.cat([torch.full((B, 1), BOS, dtype=torch.int64), tgt[:, :-1]], 1)
    return src, src_len, dec_in, tgt, tgt_len


def train_step_tensors(net, cfg, seed, attn, script, extra_cfg=None):
    """One train_seq2seq iteration of net on make_batch's batch (generator
    seeded with seed + 1); attn(net) gives the attention weights to record.
    Returns the tensors to write, the loss and the gradient norm (exits when
    the norm does not clearly exceed the clip, which the tests rely on)."""
    gen = torch.Generator().manual_seed(seed + 1)
    src, src_len, dec_in, tgt, tgt_len = make_batch(gen, cfg)
    t = {"cfg." + k: torch.tensor(v, dtype=torch.int32) for k, v in cfg.items()}
    for k, v in (extra_cfg or {}).items():
        t["cfg." + k] = torch.tensor(v, dtype=torch.int32)
    for k, v in (("src", src), ("src_len", src_len), ("dec_in", dec_in), ("tgt", tgt),
                 ("tgt_len", tgt_len)):
        t[k] = v.to(torch.int32)
    for n, p in net.named_parameters():
        t[n] = p.detach().clone()

    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    optimizer.zero_grad()
    Y_hat, _ = net(src, dec_in, src_len)
    loss = MaskedSoftmaxCELoss()(Y_hat, tgt, tgt_len).sum()
    loss.backward()
    t["loss"] = loss.detach()
    t["attn"] = attn(net)
    for n, p in net.named_parameters():
        t["grad." + n] = p.grad.detach().clone()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
    t["grad_norm"] = norm.detach()
    if not norm.item() > 1.05 * CLIP:  # clearly clipped, also in float32
        sys.exit("%s: gradient norm %g does not exceed the clip" % (script, norm.item()))
    optimizer.step()
    for n, p in net.named_parameters():
        t["adam." + n] = p.detach().clone()
    return t, loss.item(), norm.item()
