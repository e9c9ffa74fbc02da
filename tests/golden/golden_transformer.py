#!/usr/bin/python3
"""PyTorch golden for kiln's transformer model (models/transformer.c): d2l's
TransformerEncoder + TransformerDecoder (d2l v1.0 11.7) and one step of d2l's
train_seq2seq, written here in torch with d2l's module names.

    /usr/bin/python3 tests/golden/golden_transformer.py

writes tests/golden/transformer/{post_ln,pre_ln}.safetensors (read by
tests/test_transformer_model.c). post_ln is d2l's model; pre_ln moves each
LayerNorm in front of its sublayer (X + f(LN(X))) and adds a final LayerNorm
to each stack (encoder.ln, decoder.ln), kiln's pre_ln option. Each holds:
- cfg.<field>: the config as int32 scalars (dropout is 0: kiln's Philox
  masks are not torch's);
- src, src_len, dec_in, tgt, tgt_len (int32): rows of different valid
  lengths, padded sources, a target row of length 0;
- every parameter under its state_dict name (kiln's parameter name),
  float64 holding float32 values;
- loss (float64 scalar): sum over the batch of MaskedSoftmaxCELoss;
- attn [B, heads, Tt, Ts]: the last decoder block's cross-attention weights;
- grad.NAME: d loss / d NAME; grad_norm: their global 2-norm;
- adam.NAME: NAME after one step (loss.sum().backward(), clip_grad_norm_ to
  1, Adam lr 0.005).

d2l builds its Linear layers lazily (nn.LazyLinear); here they are nn.Linear
with the same shapes and the same default init. The weights are drawn from a
fixed seed in float32; everything after that runs in float64 except d2l's
positional-encoding table, which d2l computes in float32 (a plain attribute,
not converted by .double()). Deterministic: rerunning rewrites identical
bytes.
"""
import math
import os
import sys

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("golden_transformer.py needs PyTorch: run it with Debian's /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_lib import safetensors_bytes  # noqa: E402
from golden_translate import train_step_tensors  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformer")
SEED = 20240611
CFG = dict(src_vocab=11, tgt_vocab=9, hidden=8, ffn=12, heads=2, blocks=2, batch=3,
           src_steps=5, tgt_steps=4)


def masked_softmax(X, valid_lens):
    """d2l.masked_softmax: [N] lengths repeat over the queries, [N, Q]
    lengths are per query; -1e6 at key positions past the length."""
    if valid_lens is None:
        return nn.functional.softmax(X, dim=-1)
    shape = X.shape
    if valid_lens.dim() == 1:
        valid_lens = torch.repeat_interleave(valid_lens, shape[1])
    else:
        valid_lens = valid_lens.reshape(-1)
    X = X.reshape(-1, shape[-1])
    mask = torch.arange(X.size(1), dtype=torch.float32)[None, :] < valid_lens[:, None]
    X = X.clone()
    X[~mask] = -1e6
    return nn.functional.softmax(X.reshape(shape), dim=-1)


class DotProductAttention(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)


class MultiHeadAttention(nn.Module):
    def __init__(self, num_hiddens, num_heads, dropout, bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def forward(self, queries, keys, values, valid_lens):
        queries = self.transpose_qkv(self.W_q(queries))
        keys = self.transpose_qkv(self.W_k(keys))
        values = self.transpose_qkv(self.W_v(values))
        if valid_lens is not None:
            valid_lens = torch.repeat_interleave(valid_lens, repeats=self.num_heads, dim=0)
        output = self.attention(queries, keys, values, valid_lens)
        return self.W_o(self.transpose_output(output))

    def transpose_qkv(self, X):
        X = X.reshape(X.shape[0], X.shape[1], self.num_heads, -1)
        X = X.permute(0, 2, 1, 3)
        return X.reshape(-1, X.shape[2], X.shape[3])

    def transpose_output(self, X):
        X = X.reshape(-1, self.num_heads, X.shape[1], X.shape[2])
        X = X.permute(0, 2, 1, 3)
        return X.reshape(X.shape[0], X.shape[1], -1)


class PositionWiseFFN(nn.Module):
    def __init__(self, num_hiddens, ffn_num_hiddens):
        super().__init__()
        self.dense1 = nn.Linear(num_hiddens, ffn_num_hiddens)
        self.relu = nn.ReLU()
        self.dense2 = nn.Linear(ffn_num_hiddens, num_hiddens)

    def forward(self, X):
        return self.dense2(self.relu(self.dense1(X)))


class AddNorm(nn.Module):
    """d2l's AddNorm; pre=True is the pre-LN residual: X + dropout(f(LN(X)))."""

    def __init__(self, norm_shape, dropout, pre):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(norm_shape)
        self.pre = pre

    def inp(self, X):
        return self.ln(X) if self.pre else X

    def forward(self, X, Y):
        return self.dropout(Y) + X if self.pre else self.ln(self.dropout(Y) + X)


class PositionalEncoding(nn.Module):
    def __init__(self, num_hiddens, dropout, max_len=1000):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.P = torch.zeros((1, max_len, num_hiddens))
        X = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1) / torch.pow(
            10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        self.P[:, :, 0::2] = torch.sin(X)
        self.P[:, :, 1::2] = torch.cos(X)

    def forward(self, X):
        return self.dropout(X + self.P[:, :X.shape[1], :])


class TransformerEncoderBlock(nn.Module):
    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout, pre):
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm1 = AddNorm(num_hiddens, dropout, pre)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout, pre)

    def forward(self, X, valid_lens):
        H = self.addnorm1.inp(X)
        Y = self.addnorm1(X, self.attention(H, H, H, valid_lens))
        return self.addnorm2(Y, self.ffn(self.addnorm2.inp(Y)))


class TransformerEncoder(nn.Module):
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                 pre):
        super().__init__()
        self.num_hiddens = num_hiddens
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout)
        self.blks = nn.Sequential()
        for i in range(num_blks):
            self.blks.add_module("block" + str(i), TransformerEncoderBlock(
                num_hiddens, ffn_num_hiddens, num_heads, dropout, pre))
        if pre:
            self.ln = nn.LayerNorm(num_hiddens)
        self.pre = pre

    def forward(self, X, valid_lens):
        X = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens))
        for blk in self.blks:
            X = blk(X, valid_lens)
        return self.ln(X) if self.pre else X


class TransformerDecoderBlock(nn.Module):
    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout, i, pre):
        super().__init__()
        self.i = i
        self.attention1 = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm1 = AddNorm(num_hiddens, dropout, pre)
        self.attention2 = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm2 = AddNorm(num_hiddens, dropout, pre)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm3 = AddNorm(num_hiddens, dropout, pre)

    def forward(self, X, state):
        """Training mode (d2l's self.training branch): the whole target at
        once, causal lengths 1..T, no key-value cache."""
        enc_outputs, enc_valid_lens = state[0], state[1]
        batch_size, num_steps, _ = X.shape
        dec_valid_lens = torch.arange(1, num_steps + 1).repeat(batch_size, 1)
        H = self.addnorm1.inp(X)
        Y = self.addnorm1(X, self.attention1(H, H, H, dec_valid_lens))
        H = self.addnorm2.inp(Y)
        Z = self.addnorm2(Y, self.attention2(H, enc_outputs, enc_outputs, enc_valid_lens))
        return self.addnorm3(Z, self.ffn(self.addnorm3.inp(Z))), state


class TransformerDecoder(nn.Module):
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                 pre):
        super().__init__()
        self.num_hiddens = num_hiddens
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout)
        self.blks = nn.Sequential()
        for i in range(num_blks):
            self.blks.add_module("block" + str(i), TransformerDecoderBlock(
                num_hiddens, ffn_num_hiddens, num_heads, dropout, i, pre))
        if pre:
            self.ln = nn.LayerNorm(num_hiddens)
        self.dense = nn.Linear(num_hiddens, vocab_size)
        self.pre = pre

    def init_state(self, enc_outputs, enc_valid_lens):
        return [enc_outputs, enc_valid_lens]

    def forward(self, X, state):
        X = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens))
        for blk in self.blks:
            X, state = blk(X, state)
            self.cross_weights = blk.attention2.attention.attention_weights
        if self.pre:
            X = self.ln(X)
        return self.dense(X), state


class EncoderDecoder(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, enc_X, dec_X, enc_valid_len):
        enc_outputs = self.encoder(enc_X, enc_valid_len)
        dec_state = self.decoder.init_state(enc_outputs, enc_valid_len)
        return self.decoder(dec_X, dec_state)


def build(c, pre):
    torch.manual_seed(SEED)
    args = (c["hidden"], c["ffn"], c["heads"], c["blocks"], 0.0, pre)
    enc = TransformerEncoder(c["src_vocab"], *args)
    dec = TransformerDecoder(c["tgt_vocab"], *args)
    return EncoderDecoder(enc, dec).double()


def golden(pre, out_dir):
    c = CFG
    net = build(c, pre)
    B, H, Tt, Ts = c["batch"], c["heads"], c["tgt_steps"], c["src_steps"]
    t, loss, norm = train_step_tensors(
        net, c, SEED, lambda n: n.decoder.cross_weights.detach().reshape(B, H, Tt, Ts).clone(),
        "golden_transformer.py", {"pre_ln": int(pre)})
    name = "pre_ln" if pre else "post_ln"
    with open(os.path.join(out_dir, name + ".safetensors"), "wb") as f:
        f.write(safetensors_bytes(t))
    print("wrote the transformer golden %s (%d parameters, loss %.6f, grad norm %.4f) to %s"
          % (name, len(list(net.parameters())), loss, norm, out_dir))


def main(out_dir=OUT_DIR):
    os.makedirs(out_dir, exist_ok=True)
    golden(False, out_dir)
    golden(True, out_dir)


if __name__ == "__main__":
    main()
