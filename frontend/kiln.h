/* kiln.h — the public C API: build a graph with the DSL, compile it, run it.
 * Builder calls infer shapes and dtypes as they go. Errors are sticky values:
 * a bad call records a message on the graph (op, operand types, the caller's
 * file:line) and returns an invalid value that later calls pass along;
 * kl_graph_error() returns the first message. Nothing here aborts or exits.
 * Ownership: *_create returns an owned object freed by its *_destroy;
 * anything returned as `const` or documented "borrowed" stays owned by the
 * object it came from. */
#ifndef KILN_H
#define KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { KL_F32, KL_F64, KL_I32, KL_I64, KL_BOOL } kl_dtype;

#define KL_MAX_RANK 6

/* A short list of integers: shapes, axes, permutations, slice bounds. */
typedef struct kl_ints {
  int n;
  int64_t v[8];
} kl_ints;

#define KL__NARGS(...) KL__NARGS_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define KL__NARGS_(a, b, c, d, e, f, g, h, N, ...) N
/* KL_INTS(2, 4, 8) — a list; KL_SHAPE is the same for shapes. */
#define KL_INTS(...) ((kl_ints){.n = KL__NARGS(__VA_ARGS__), .v = {__VA_ARGS__}})
#define KL_SHAPE(...) KL_INTS(__VA_ARGS__)
#define KL_SCALAR ((kl_ints){.n = 0})

typedef struct kl_graph kl_graph;

/* A value in a graph. Treat as opaque: copy it freely, compare with
 * kl_value_ok(). Invalid values (after an error) propagate. */
typedef struct kl_value {
  kl_graph *g;
  int id;
} kl_value;

/* ---- graphs ---------------------------------------------------------- */

kl_graph *kl_graph_create(const char *name); /* owned */
void kl_graph_destroy(kl_graph *g);
/* First error message, or NULL. Borrowed, valid while g lives. */
const char *kl_graph_error(const kl_graph *g);
bool kl_value_ok(kl_value v);

/* Graph outputs, in order (call once per output). */
void kl_output(kl_value v);
/* Names a value (printed as %name in the IR). Returns v. */
kl_value kl_name(kl_value v, const char *name);
/* Parameter name scopes: kl_scope_push(g, "encoder"); ... kl_scope_pop(g).
 * A parameter "wq" made inside scopes encoder, layer0, attn is named
 * "encoder.layer0.attn.wq". */
void kl_scope_push(kl_graph *g, const char *scope);
void kl_scope_pop(kl_graph *g);

/* The value's dtype / rank / dimension (negative axes count from the end);
 * -1 for an invalid value. */
kl_dtype kl_dtype_of(kl_value v);
int kl_rank(kl_value v);
int64_t kl_dim(kl_value v, int axis);

/* Text form of the graph (DESIGN.md); kl_graph_to_string returns a malloc'd
 * string the caller frees. */
void kl_graph_print(const kl_graph *g, FILE *f);
char *kl_graph_to_string(const kl_graph *g);

/* Every builder below is a macro that passes the caller's __FILE__ and
 * __LINE__ to the *_at function of the same name, so errors and the IR's
 * "# file.c:LINE" point at the user's code. */
#define KL__LOC __FILE__, __LINE__

/* ---- leaves ---------------------------------------------------------- */

kl_value kl_input_at(kl_graph *g, const char *name, kl_dtype dt, kl_ints shape, const char *file,
                     int line);
kl_value kl_param_at(kl_graph *g, const char *name, kl_dtype dt, kl_ints shape, const char *file,
                     int line);
/* Initialisers (d2l's): NORMAL is N(0, scale^2) and UNIFORM U(-scale, scale),
 * scale 0 meaning 0.1; XAVIER_* and KAIMING_* take scale as the gain (0
 * meaning 1 for Xavier, sqrt(2) for Kaiming), with fan_in = numel / last
 * dim and fan_out = last dim (x @ W with W [in, out]). kl_param is
 * kl_param_init with KL_INIT_NORMAL and scale 0. */
typedef enum {
  KL_INIT_NORMAL,
  KL_INIT_UNIFORM,
  KL_INIT_ZEROS,
  KL_INIT_ONES,
  KL_INIT_XAVIER_UNIFORM,
  KL_INIT_XAVIER_NORMAL,
  KL_INIT_KAIMING_UNIFORM,
  KL_INIT_KAIMING_NORMAL
} kl_init;
kl_value kl_param_init_at(kl_graph *g, const char *name, kl_dtype dt, kl_ints shape, kl_init init,
                          double scale, const char *file, int line);
kl_value kl_scalar_at(kl_graph *g, double v, kl_dtype dt, const char *file, int line);
/* data holds numel elements of dt (copied). */
kl_value kl_constant_at(kl_graph *g, kl_dtype dt, kl_ints shape, const void *data, const char *file,
                        int line);
kl_value kl_iota_at(kl_graph *g, kl_ints shape, int axis, kl_dtype dt, const char *file, int line);
#define kl_input(g, name, dt, shape) kl_input_at(g, name, dt, shape, KL__LOC)
#define kl_param(g, name, dt, shape) kl_param_at(g, name, dt, shape, KL__LOC)
#define kl_param_init(g, name, dt, shape, init, scale)                                             \
  kl_param_init_at(g, name, dt, shape, init, scale, KL__LOC)
#define kl_scalar(g, v, dt) kl_scalar_at(g, v, dt, KL__LOC)
#define kl_constant(g, dt, shape, data) kl_constant_at(g, dt, shape, data, KL__LOC)
#define kl_iota(g, shape, axis, dt) kl_iota_at(g, shape, axis, dt, KL__LOC)

/* ---- elementwise ----------------------------------------------------- */

/* Binary ops broadcast numpy-style; both operands have the same dtype.
 * kl_lt ... kl_eq are the cmp_* ops and give bool. */
kl_value kl_add_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_sub_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_mul_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_div_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_pow_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_max_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_min_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_lt_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_le_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_gt_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_ge_at(kl_value a, kl_value b, const char *file, int line);
kl_value kl_eq_at(kl_value a, kl_value b, const char *file, int line);
#define kl_add(a, b) kl_add_at(a, b, KL__LOC)
#define kl_sub(a, b) kl_sub_at(a, b, KL__LOC)
#define kl_mul(a, b) kl_mul_at(a, b, KL__LOC)
#define kl_div(a, b) kl_div_at(a, b, KL__LOC)
#define kl_pow(a, b) kl_pow_at(a, b, KL__LOC)
#define kl_max(a, b) kl_max_at(a, b, KL__LOC)
#define kl_min(a, b) kl_min_at(a, b, KL__LOC)
#define kl_lt(a, b) kl_lt_at(a, b, KL__LOC)
#define kl_le(a, b) kl_le_at(a, b, KL__LOC)
#define kl_gt(a, b) kl_gt_at(a, b, KL__LOC)
#define kl_ge(a, b) kl_ge_at(a, b, KL__LOC)
#define kl_eq(a, b) kl_eq_at(a, b, KL__LOC)

/* x op scalar, the scalar made a constant of x's dtype. */
kl_value kl_add_scalar_at(kl_value x, double s, const char *file, int line);
kl_value kl_mul_scalar_at(kl_value x, double s, const char *file, int line);
#define kl_add_scalar(x, s) kl_add_scalar_at(x, s, KL__LOC)
#define kl_mul_scalar(x, s) kl_mul_scalar_at(x, s, KL__LOC)

kl_value kl_neg_at(kl_value x, const char *file, int line);
kl_value kl_exp_at(kl_value x, const char *file, int line);
kl_value kl_log_at(kl_value x, const char *file, int line);
kl_value kl_tanh_at(kl_value x, const char *file, int line);
kl_value kl_sigmoid_at(kl_value x, const char *file, int line);
kl_value kl_erf_at(kl_value x, const char *file, int line); /* torch.erf */
kl_value kl_relu_at(kl_value x, const char *file, int line);
kl_value kl_sqrt_at(kl_value x, const char *file, int line);
kl_value kl_rsqrt_at(kl_value x, const char *file, int line);
kl_value kl_sin_at(kl_value x, const char *file, int line);
kl_value kl_cos_at(kl_value x, const char *file, int line);
kl_value kl_abs_at(kl_value x, const char *file, int line);
#define kl_neg(x) kl_neg_at(x, KL__LOC)
#define kl_exp(x) kl_exp_at(x, KL__LOC)
#define kl_log(x) kl_log_at(x, KL__LOC)
#define kl_tanh(x) kl_tanh_at(x, KL__LOC)
#define kl_sigmoid(x) kl_sigmoid_at(x, KL__LOC)
#define kl_erf(x) kl_erf_at(x, KL__LOC)
#define kl_relu(x) kl_relu_at(x, KL__LOC)
#define kl_sqrt(x) kl_sqrt_at(x, KL__LOC)
#define kl_rsqrt(x) kl_rsqrt_at(x, KL__LOC)
#define kl_sin(x) kl_sin_at(x, KL__LOC)
#define kl_cos(x) kl_cos_at(x, KL__LOC)
#define kl_abs(x) kl_abs_at(x, KL__LOC)

/* approximate: false = exact erf form (PyTorch's default), true = tanh. */
kl_value kl_gelu_at(kl_value x, bool approximate_tanh, const char *file, int line);
kl_value kl_select_at(kl_value cond, kl_value a, kl_value b, const char *file, int line);
kl_value kl_cast_at(kl_value x, kl_dtype to, const char *file, int line);
/* Identity unless the graph runs in training mode. */
kl_value kl_dropout_at(kl_value x, double p, const char *file, int line);
#define kl_gelu(x, approx) kl_gelu_at(x, approx, KL__LOC)
#define kl_select(c, a, b) kl_select_at(c, a, b, KL__LOC)
#define kl_cast(x, to) kl_cast_at(x, to, KL__LOC)
#define kl_dropout(x, p) kl_dropout_at(x, p, KL__LOC)

/* ---- reductions and normalisation ---------------------------------- */

kl_value kl_sum_at(kl_value x, kl_ints axes, bool keepdims, const char *file, int line);
kl_value kl_mean_at(kl_value x, kl_ints axes, bool keepdims, const char *file, int line);
kl_value kl_reduce_max_at(kl_value x, kl_ints axes, bool keepdims, const char *file, int line);
kl_value kl_sum_all_at(kl_value x, const char *file, int line); /* over every axis */
kl_value kl_softmax_at(kl_value x, int axis, const char *file, int line);
kl_value kl_log_softmax_at(kl_value x, int axis, const char *file, int line);
kl_value kl_layernorm_at(kl_value x, kl_value gamma, kl_value beta, double eps, const char *file,
                         int line);
#define kl_sum(x, axes, keep) kl_sum_at(x, axes, keep, KL__LOC)
#define kl_mean(x, axes, keep) kl_mean_at(x, axes, keep, KL__LOC)
#define kl_reduce_max(x, axes, keep) kl_reduce_max_at(x, axes, keep, KL__LOC)
#define kl_sum_all(x) kl_sum_all_at(x, KL__LOC)
#define kl_softmax(x, axis) kl_softmax_at(x, axis, KL__LOC)
#define kl_log_softmax(x, axis) kl_log_softmax_at(x, axis, KL__LOC)
#define kl_layernorm(x, gamma, beta, eps) kl_layernorm_at(x, gamma, beta, eps, KL__LOC)

/* ---- shape and data movement --------------------------------------- */

kl_value kl_reshape_at(kl_value x, kl_ints shape, const char *file, int line);
kl_value kl_transpose_at(kl_value x, kl_ints perm, const char *file, int line);
kl_value kl_broadcast_to_at(kl_value x, kl_ints shape, const char *file, int line);
/* One start and end per axis, end exclusive. */
kl_value kl_slice_at(kl_value x, kl_ints starts, kl_ints ends, const char *file, int line);
kl_value kl_concat_at(int n, const kl_value *xs, int axis, const char *file, int line);
/* Rows of table [V, D...] picked by integer idx: idx.shape + table.shape[1:]. */
kl_value kl_gather_at(kl_value table, kl_value idx, const char *file, int line);
#define kl_reshape(x, shape) kl_reshape_at(x, shape, KL__LOC)
#define kl_transpose(x, perm) kl_transpose_at(x, perm, KL__LOC)
#define kl_broadcast_to(x, shape) kl_broadcast_to_at(x, shape, KL__LOC)
#define kl_slice(x, starts, ends) kl_slice_at(x, starts, ends, KL__LOC)
#define kl_concat(n, xs, axis) kl_concat_at(n, xs, axis, KL__LOC)
#define kl_gather(table, idx) kl_gather_at(table, idx, KL__LOC)

/* ---- contractions, masks, losses ------------------------------------ */

/* numpy matmul: batch dims broadcast, the last two contract. */
kl_value kl_matmul_at(kl_value a, kl_value b, bool transpose_a, bool transpose_b, const char *file,
                      int line);
/* x [..., K]; positions k >= len become `value`. len's shape is a prefix of
 * x's leading dims. */
kl_value kl_sequence_mask_at(kl_value x, kl_value len, double value, const char *file, int line);
/* Per-position loss [...] for logits [..., V] and integer labels [...];
 * 0 where label == ignore_index. */
kl_value kl_softmax_cross_entropy_at(kl_value logits, kl_value labels, int64_t ignore_index,
                                     const char *file, int line);
#define kl_matmul(a, b) kl_matmul_at(a, b, false, false, KL__LOC)
#define kl_matmul_t(a, b, ta, tb) kl_matmul_at(a, b, ta, tb, KL__LOC)
#define kl_sequence_mask(x, len, value) kl_sequence_mask_at(x, len, value, KL__LOC)
#define kl_softmax_cross_entropy(logits, labels, ignore)                                           \
  kl_softmax_cross_entropy_at(logits, labels, ignore, KL__LOC)

/* ---- compositions (emit primitives; passes recognise and fuse them) --- */

/* softmax(mask(q k^T / sqrt(d), valid_len)) v. q [..., Q, D], k [..., K, D],
 * v [..., K, Dv]; valid_len may be an invalid value (kl_none()) for no mask. */
kl_value kl_attention_at(kl_value q, kl_value k, kl_value v, kl_value valid_len, const char *file,
                         int line);
#define kl_attention(q, k, v, len) kl_attention_at(q, k, v, len, KL__LOC)
/* An absent optional operand. */
kl_value kl_none(void);

/* Mean over every element of (pred - target)^2, a scalar (torch's MSELoss). */
kl_value kl_mse_loss_at(kl_value pred, kl_value target, const char *file, int line);
/* d2l's MaskedSoftmaxCELoss: logits [B, T, V], integer labels [B, T],
 * integer valid_len [B]; per-token cross-entropy, 0 at t >= valid_len[b],
 * then the mean over T (padding included): [B]. */
kl_value kl_masked_softmax_cross_entropy_at(kl_value logits, kl_value labels, kl_value valid_len,
                                            const char *file, int line);
#define kl_mse_loss(p, t) kl_mse_loss_at(p, t, KL__LOC)
#define kl_masked_softmax_cross_entropy(l, y, len)                                                 \
  kl_masked_softmax_cross_entropy_at(l, y, len, KL__LOC)

/* A graph is compiled with kl_compile (kiln_compile.h) or trained with
 * kl_compile_train (kiln_train.h). */

#ifdef __cplusplus
}
#endif
#endif
