/* Gradient rules of the elementwise ops: broadcasting binary arithmetic
 * (summed back to each operand's shape), select, the unary math functions,
 * cast and dropout. Conventions follow PyTorch's autograd at the kinks:
 * relu and abs have slope 0 at 0, max/min split ties evenly, pow's
 * exponent gradient is 0 where the base is 0 and the exponent >= 0. */
#include "passes/grad_util.h"

PASS_GRAD_FN(pass_grad_add_sub) {
  if (pass_ad_wants(ad, 0)) gx[0] = pass_ad_unbroadcast(ad, gy, ad_in_type(ad, n, 0));
  if (pass_ad_wants(ad, 1)) {
    int g = pass_ad_unbroadcast(ad, gy, ad_in_type(ad, n, 1));
    gx[1] = n->op == IR_OP_SUB ? ad_neg(ad, g) : g;
  }
  return true;
}

PASS_GRAD_FN(pass_grad_mul) {
  int a = n->in[0], b = n->in[1];
  if (pass_ad_wants(ad, 0)) gx[0] = pass_ad_unbroadcast(ad, ad_mul(ad, gy, b), ad_type(ad, a));
  if (pass_ad_wants(ad, 1)) gx[1] = pass_ad_unbroadcast(ad, ad_mul(ad, gy, a), ad_type(ad, b));
  return true;
}

/* y = a / b: da = g / b, db = -g y / b */
PASS_GRAD_FN(pass_grad_div) {
  int b = n->in[1];
  if (pass_ad_wants(ad, 0))
    gx[0] = pass_ad_unbroadcast(ad, ad_div(ad, gy, b), ad_in_type(ad, n, 0));
  if (pass_ad_wants(ad, 1)) {
    int t = ad_div(ad, ad_mul(ad, gy, n->id), b);
    gx[1] = ad_neg(ad, pass_ad_unbroadcast(ad, t, ad_type(ad, b)));
  }
  return true;
}

/* y = a^b: da = g b a^(b-1) (0 where b == 0, as torch), db = g y log(a)
 * (0 where a == 0 and b >= 0, as torch). */
PASS_GRAD_FN(pass_grad_pow) {
  int a = n->in[0], b = n->in[1];
  ir_dtype dt = n->type.dtype;
  int zero = pass_ad_scalar(ad, 0.0, dt);
  if (pass_ad_wants(ad, 0)) {
    int bm1 = ad_sub(ad, b, pass_ad_scalar(ad, 1.0, dt));
    int d = ad_mul(ad, b, pass_ad_binary(ad, IR_OP_POW, a, bm1));
    d = ad_select(ad, pass_ad_binary(ad, IR_OP_CMP_EQ, b, zero), zero, d);
    gx[0] = pass_ad_unbroadcast(ad, ad_mul(ad, gy, d), ad_type(ad, a));
  }
  if (pass_ad_wants(ad, 1)) {
    int ylog = ad_mul(ad, n->id, pass_ad_unary(ad, IR_OP_LOG, a));
    int inner = ad_select(ad, pass_ad_binary(ad, IR_OP_CMP_GE, b, zero), zero, ylog);
    int d = ad_select(ad, pass_ad_binary(ad, IR_OP_CMP_EQ, a, zero), inner, ylog);
    gx[1] = pass_ad_unbroadcast(ad, ad_mul(ad, gy, d), ad_type(ad, b));
  }
  return true;
}

/* torch.maximum / minimum: the winner takes g, a tie gives g/2 to each. */
PASS_GRAD_FN(pass_grad_max_min) {
  int a = n->in[0], b = n->in[1];
  ir_dtype dt = n->type.dtype;
  int zero = pass_ad_scalar(ad, 0.0, dt);
  int half = ad_scale(ad, gy, 0.5);
  int tie = pass_ad_binary(ad, IR_OP_CMP_EQ, a, b);
  ir_op a_wins = n->op == IR_OP_MAX ? IR_OP_CMP_GT : IR_OP_CMP_LT;
  ir_op b_wins = n->op == IR_OP_MAX ? IR_OP_CMP_LT : IR_OP_CMP_GT;
  if (pass_ad_wants(ad, 0)) {
    int win = ad_select(ad, pass_ad_binary(ad, a_wins, a, b), gy, zero);
    gx[0] = pass_ad_unbroadcast(ad, ad_select(ad, tie, half, win), ad_type(ad, a));
  }
  if (pass_ad_wants(ad, 1)) {
    int win = ad_select(ad, pass_ad_binary(ad, b_wins, a, b), gy, zero);
    gx[1] = pass_ad_unbroadcast(ad, ad_select(ad, tie, half, win), ad_type(ad, b));
  }
  return true;
}

/* select(c, a, b): g flows to the chosen side; c (bool) gets none. */
PASS_GRAD_FN(pass_grad_select) {
  int c = n->in[0];
  int zero = pass_ad_scalar(ad, 0.0, n->type.dtype);
  if (pass_ad_wants(ad, 1))
    gx[1] = pass_ad_unbroadcast(ad, ad_select(ad, c, gy, zero), ad_in_type(ad, n, 1));
  if (pass_ad_wants(ad, 2))
    gx[2] = pass_ad_unbroadcast(ad, ad_select(ad, c, zero, gy), ad_in_type(ad, n, 2));
  return true;
}

/* Unary functions; y is the forward result (node n itself). */
PASS_GRAD_FN(pass_grad_unary) {
  if (!pass_ad_wants(ad, 0)) return true;
  int x = n->in[0], y = n->id;
  ir_dtype dt = n->type.dtype;
  int zero = pass_ad_scalar(ad, 0.0, dt), one = pass_ad_scalar(ad, 1.0, dt);
  int r;
  switch (n->op) {
  case IR_OP_NEG: r = ad_neg(ad, gy); break;
  case IR_OP_ABS: {
    int pos = ad_select(ad, pass_ad_binary(ad, IR_OP_CMP_GT, x, zero), gy, zero);
    r = ad_select(ad, pass_ad_binary(ad, IR_OP_CMP_LT, x, zero), ad_neg(ad, gy), pos);
    break;
  }
  case IR_OP_RELU: r = ad_select(ad, pass_ad_binary(ad, IR_OP_CMP_GT, x, zero), gy, zero); break;
  case IR_OP_EXP: r = ad_mul(ad, gy, y); break;
  case IR_OP_LOG: r = ad_div(ad, gy, x); break;
  case IR_OP_TANH: r = ad_mul(ad, gy, ad_sub(ad, one, ad_mul(ad, y, y))); break;
  case IR_OP_SIGMOID: r = ad_mul(ad, ad_mul(ad, gy, y), ad_sub(ad, one, y)); break;
  case IR_OP_SQRT: r = ad_div(ad, ad_scale(ad, gy, 0.5), y); break;
  case IR_OP_RSQRT: r = ad_mul(ad, ad_scale(ad, gy, -0.5), ad_mul(ad, ad_mul(ad, y, y), y)); break;
  case IR_OP_SIN: r = ad_mul(ad, gy, pass_ad_unary(ad, IR_OP_COS, x)); break;
  case IR_OP_COS: r = ad_mul(ad, gy, ad_neg(ad, pass_ad_unary(ad, IR_OP_SIN, x))); break;
  case IR_OP_ERF: /* 2 / sqrt(pi) e^(-x^2) */
    r = ad_mul(ad, ad_scale(ad, gy, 1.12837916709551257390),
               pass_ad_unary(ad, IR_OP_EXP, ad_neg(ad, ad_mul(ad, x, x))));
    break;
  case IR_OP_GELU: {
    /* the derivative of the same form (exact or tanh) the forward used */
    int dg = pass_ad_op(ad, IR_OP_GELU_DERIV, 1, &x, n->attrs);
    r = ad_mul(ad, gy, dg);
    break;
  }
  default: return pass_ad_fail(ad, "not a unary op with a gradient");
  }
  gx[0] = r;
  return r >= 0;
}

/* Only float-to-float casts carry a gradient (a cast to an integer or
 * bool ends the path, so this rule never sees one); g goes back to x's
 * dtype. */
PASS_GRAD_FN(pass_grad_cast) {
  if (!pass_ad_wants(ad, 0)) return true;
  ir_dtype from = ad_in_type(ad, n, 0)->dtype;
  if (!ir_dtype_is_float(from)) return true;
  gx[0] = pass_ad_cast(ad, gy, from);
  return gx[0] >= 0;
}

/* The same mask and scale as the forward: a dropout of g with the forward's
 * p and key (the driver pinned key -1 to the forward node's id). */
PASS_GRAD_FN(pass_grad_dropout) {
  if (!pass_ad_wants(ad, 0)) return true;
  ir_attr a[2] = {n->attrs[0], pass_attr_int(n->attrs[1].i >= 0 ? n->attrs[1].i : n->id)};
  gx[0] = pass_ad_op(ad, IR_OP_DROPOUT, 1, &gy, a);
  return gx[0] >= 0;
}
