/* Reference kernel of scale_mask_softmax (ir.h, "fused ops"): the masked,
 * scaled scores are written to out in its dtype first, rounded as the
 * unfused mul / add / sequence_mask / select nodes would round them, then
 * each row's softmax runs in double over out, in place. */
#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_scale_mask_softmax) {
  (void)opts;
  const ir_type *xt = &in[0]->type;
  double scale = n->attrs[0].f, mv = n->attrs[2].f;
  bool causal = n->attrs[1].b;
  if (xt->rank < 1 || (causal && xt->rank < 2)) {
    ir_diag_set(d, "%s: x needs rank >= %d", rt_opname(n), causal ? 2 : 1);
    return false;
  }
  const rt_tensor *mask = n->nin == 2 ? in[1] : NULL;
  bool lengths = mask && ir_dtype_is_int(mask->type.dtype);
  int64_t tk = xt->dims[xt->rank - 1], tq = xt->rank >= 2 ? xt->dims[xt->rank - 2] : 1;
  int64_t rest = 1, bstr[IR_MAX_RANK];
  if (lengths)
    for (int i = mask->type.rank; i < xt->rank; i++)
      rest *= xt->dims[i];
  if (mask && !lengths) ir_broadcast_strides(&mask->type, xt, bstr);
  int64_t e = rt_numel(in[0]);
  for (int64_t i = 0; i < e; i++) {
    int64_t j = i % tk, q = (i / tk) % tq;
    rt_store_f(out, i, rt_get_f(in[0], i) * scale);
    if (mask && !lengths)
      rt_store_f(out, i, rt_get_f(out, i) + rt_get_f(mask, rt_bcast_offset(xt, bstr, i)));
    if ((lengths && j >= rt_load_i(mask, i / rest)) || (causal && j > q)) rt_store_f(out, i, mv);
  }
  for (int64_t base = 0; tk > 0 && base < e; base += tk) {
    double m = -INFINITY;
    for (int64_t k = 0; k < tk; k++) {
      double v = rt_get_f(out, base + k);
      if (v > m || isnan(v)) m = isnan(m) ? m : v;
    }
    double s = 0;
    for (int64_t k = 0; k < tk; k++)
      s += exp(rt_get_f(out, base + k) - m);
    for (int64_t k = 0; k < tk; k++)
      rt_store_f(out, base + k, exp(rt_get_f(out, base + k) - m) / s);
  }
  return true;
}
