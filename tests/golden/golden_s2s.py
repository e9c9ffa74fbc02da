#!/usr/bin/python3
"""PyTorch golden for kiln's seq2seq-attn model (models/seq2seq_attn.c): d2l's
Seq2SeqEncoder + Seq2SeqAttentionDecoder ("Bahdanau attention") and one step
of d2l's train_seq2seq, written here in torch.

    /usr/bin/python3 tests/golden/golden_s2s.py

writes tests/golden/s2s/s2s.safetensors (read by tests/test_s2s_model.c):
- cfg.<field>: the config as int32 scalars (dropout is 0: kiln's Philox
  masks are not torch's);
- src, src_len, dec_in, tgt, tgt_len (int32): rows of different valid
  lengths, padded sources, a target row of length 0;
- every parameter under its PyTorch name (the state_dict key, which is
  kiln's parameter name), float64 holding float32 values;
- loss (float64 scalar): sum over the batch of MaskedSoftmaxCELoss;
- attn [B, Tt, Ts]: each decoder step's attention weights;
- grad.NAME: d loss / d NAME; grad_norm: their global 2-norm;
- adam.NAME: NAME after one step as train_seq2seq does it (loss.sum()
  .backward(), clipping to norm 1, Adam lr 0.005), with
  torch.nn.utils.clip_grad_norm_ (kiln's clip_norm semantics) in place of
  d2l.grad_clipping (which divides by norm instead of norm + 1e-6).

The weights are drawn by torch's default initialisers plus d2l's
xavier_init_weights from a fixed seed in float32; everything after that runs
in float64, so the expected values are exact for the stored weights and a
float32 run differs only by its own rounding. Deterministic: rerunning
rewrites identical bytes.
"""
import os
import sys

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("golden_s2s.py needs PyTorch: run it with Debian's /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_lib import safetensors_bytes  # noqa: E402
from golden_translate import train_step_tensors  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "s2s")
SEED = 20240517
CFG = dict(src_vocab=11, tgt_vocab=9, embed=5, hidden=6, layers=2, batch=3, src_steps=5,
           tgt_steps=4)


def sequence_mask(X, valid_len, value=0.0):
    """d2l.sequence_mask: entries at or past each row's valid length := value."""
    mask = torch.arange(X.size(1), dtype=torch.float32)[None, :] < valid_len[:, None]
    X = X.clone()
    X[~mask] = value
    return X


def masked_softmax(X, valid_lens):
    """d2l.masked_softmax with 1-D valid_lens: -1e6 past the length."""
    shape = X.shape
    valid_lens = torch.repeat_interleave(valid_lens, shape[1])
    X = sequence_mask(X.reshape(-1, shape[-1]), valid_lens, value=-1e6)
    return nn.functional.softmax(X.reshape(shape), dim=-1)


class AdditiveAttention(nn.Module):
    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens):
        queries, keys = self.W_q(queries), self.W_k(keys)
        features = torch.tanh(queries.unsqueeze(2) + keys.unsqueeze(1))
        scores = self.w_v(features).squeeze(-1)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)


class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, num_hiddens, num_layers, dropout=dropout)

    def forward(self, X):
        X = self.embedding(X).permute(1, 0, 2)
        return self.rnn(X)


class Seq2SeqAttentionDecoder(nn.Module):
    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens, dropout)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, enc_valid_lens):
        outputs, hidden_state = enc_outputs
        return (outputs.permute(1, 0, 2), hidden_state, enc_valid_lens)

    def forward(self, X, state):
        enc_outputs, hidden_state, enc_valid_lens = state
        X = self.embedding(X).permute(1, 0, 2)
        outputs, self.attention_weights = [], []
        for x in X:
            query = torch.unsqueeze(hidden_state[-1], dim=1)
            context = self.attention(query, enc_outputs, enc_outputs, enc_valid_lens)
            x = torch.cat((context, torch.unsqueeze(x, dim=1)), dim=-1)
            out, hidden_state = self.rnn(x.permute(1, 0, 2), hidden_state)
            outputs.append(out)
            self.attention_weights.append(self.attention.attention_weights)
        outputs = self.dense(torch.cat(outputs, dim=0))
        return outputs.permute(1, 0, 2), [enc_outputs, hidden_state, enc_valid_lens]


class EncoderDecoder(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, enc_X, dec_X, enc_valid_len):
        enc_outputs = self.encoder(enc_X)
        dec_state = self.decoder.init_state(enc_outputs, enc_valid_len)
        return self.decoder(dec_X, dec_state)


def xavier_init_weights(m):
    if type(m) == nn.Linear:
        nn.init.xavier_uniform_(m.weight)
    if type(m) == nn.GRU:
        for param in m._flat_weights_names:
            if "weight" in param:
                nn.init.xavier_uniform_(m._parameters[param])


def build(c):
    torch.manual_seed(SEED)
    enc = Seq2SeqEncoder(c["src_vocab"], c["embed"], c["hidden"], c["layers"])
    dec = Seq2SeqAttentionDecoder(c["tgt_vocab"], c["embed"], c["hidden"], c["layers"])
    net = EncoderDecoder(enc, dec)
    net.apply(xavier_init_weights)
    return net.double()


def main(out_dir=OUT_DIR):
    net = build(CFG)
    t, loss, norm = train_step_tensors(
        net, CFG, SEED,
        lambda n: torch.stack([w.squeeze(1) for w in n.decoder.attention_weights], 1).detach(),
        "golden_s2s.py")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "s2s.safetensors"), "wb") as f:
        f.write(safetensors_bytes(t))
    print("wrote the seq2seq-attn golden (%d parameters, loss %.6f, grad norm %.4f) to %s"
          % (len(list(net.parameters())), loss, norm, out_dir))


if __name__ == "__main__":
    main()
