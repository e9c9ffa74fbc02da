/* Inline f32 exp, tanh, sigmoid and erf: branch-free LLVM IR (range
 * reduction and a polynomial) that the loop vectorizer can widen, where
 * libm's expf, tanhf and erff calls kept elementwise loops scalar (27% of
 * a GRU training step; erff 8% of a GELU GPT's). f64 keeps llvm.exp / libm: its results are
 * compared tightly with the reference interpreter. Coefficients are our own fits (weighted least
 * squares iterated towards minimax, in numpy), rounded to f32; the error bounds are checked by
 * tests/test_jit_math.c. */
#include "backend/cg.h"

static LLVMValueRef f32c(cg_ctx *c, double v) { return LLVMConstReal(c->t_f32, v); }

static LLVMValueRef fma_(cg_ctx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d) {
  /* llvm.fmuladd fuses where the target has FMA and stays two operations
   * elsewhere; llvm.fma would become a slow fmaf call on such hosts. */
  LLVMValueRef args[] = {a, b, d};
  return cg_intrinsic(c, "llvm.fmuladd", LLVMTypeOf(a), args, 3);
}

static LLVMValueRef intrin1(cg_ctx *c, const char *name, LLVMValueRef x) {
  return cg_intrinsic(c, name, LLVMTypeOf(x), &x, 1);
}

static LLVMValueRef intrin2(cg_ctx *c, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return cg_intrinsic(c, name, LLVMTypeOf(x), a, 2);
}

/* 2^k for integer k in [-126, 127] (i32), built in the exponent field. */
static LLVMValueRef pow2i(cg_ctx *c, LLVMValueRef k) {
  LLVMValueRef bits =
      LLVMBuildShl(c->b, LLVMBuildAdd(c->b, k, cg_i32(c, 127), ""), cg_i32(c, 23), "");
  return LLVMBuildBitCast(c->b, bits, c->t_f32, "");
}

/* e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln2 / 2.
 * - x is first clamped to [-104, 89]: below, e^x rounds to 0 even as a
 *   denormal; above, it overflows. The clamp keeps n in [-150, 129].
 * - n comes from adding 1.5 * 2^23, which rounds to an integer and leaves
 *   it in the low mantissa bits (no float->int conversion).
 * - r = x - n ln2 in two steps (Cody-Waite): LN2_HI has 13 significant
 *   bits, so n * LN2_HI is exact even where fmuladd does not fuse.
 * - e^r = 1 + r + r^2 q(r), q a degree-4 fit (relative error 3e-9 on the
 *   interval, well below f32's 6e-8).
 * - 2^n is applied as two factors 2^(n/2) so that results near overflow
 *   become inf and denormal results are rounded once, not flushed early.
 * NaN is passed through (the clamp would turn it into a number). */
static LLVMValueRef exp_f32(cg_ctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  const double magic = 0x1.8p23, ln2_hi = 0x1.62ep-1, ln2_lo = 0x1.0bfbe8p-15;
  static const double q[] = {0x1.fffffcp-2, 0x1.55549p-3, 0x1.5558f4p-5, 0x1.123a68p-7,
                             0x1.6a232ep-10};
  LLVMValueRef xc =
      intrin2(c, "llvm.minnum", intrin2(c, "llvm.maxnum", x, f32c(c, -104)), f32c(c, 89));
  LLVMValueRef t = fma_(c, xc, f32c(c, 0x1.715476p0), f32c(c, magic));
  LLVMValueRef n = LLVMBuildFSub(b, t, f32c(c, magic), "");
  LLVMValueRef r = fma_(c, n, f32c(c, -ln2_hi), xc);
  r = fma_(c, n, f32c(c, -ln2_lo), r);
  LLVMValueRef p = f32c(c, q[4]);
  for (int i = 3; i >= 0; i--)
    p = fma_(c, p, r, f32c(c, q[i]));
  p = fma_(c, p, LLVMBuildFMul(b, r, r, ""), r);
  p = LLVMBuildFAdd(b, p, f32c(c, 1.0), "");
  LLVMValueRef ni = LLVMBuildSub(b, LLVMBuildBitCast(b, t, c->t_i32, ""),
                                 LLVMBuildBitCast(b, f32c(c, magic), c->t_i32, ""), "");
  LLVMValueRef k1 = LLVMBuildAShr(b, ni, cg_i32(c, 1), "");
  LLVMValueRef k2 = LLVMBuildSub(b, ni, k1, "");
  LLVMValueRef y = LLVMBuildFMul(b, LLVMBuildFMul(b, p, pow2i(c, k1), ""), pow2i(c, k2), "");
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, y, "");
}

/* tanh(x) = sign(x) tanh(|x|):
 * - |x| < 0.625: an odd polynomial a + a^3 P(a^2), P a 5-term fit
 *   (relative error 4e-9), so tiny inputs (and -0) come back exactly;
 * - otherwise 1 - 2 / (e^(2a) + 1): at a >= 0.625 the result is >= 0.55,
 *   so the subtraction loses at most a bit; e^(2a) = inf gives exactly 1.
 * Both sides are computed and one selected (no branches to vectorize
 * around); NaN takes the second side and stays NaN. */
static LLVMValueRef tanh_f32(cg_ctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  static const double q[] = {-0x1.555532p-2, 0x1.110726p-3, -0x1.b83c5ap-5, 0x1.52269ep-6,
                             -0x1.75e1d4p-8};
  LLVMValueRef a = intrin1(c, "llvm.fabs", x);
  LLVMValueRef a2 = LLVMBuildFMul(b, a, a, "");
  LLVMValueRef p = f32c(c, q[4]);
  for (int i = 3; i >= 0; i--)
    p = fma_(c, p, a2, f32c(c, q[i]));
  LLVMValueRef small = fma_(c, LLVMBuildFMul(b, a, a2, ""), p, a);
  LLVMValueRef e = exp_f32(c, LLVMBuildFAdd(b, a, a, ""));
  LLVMValueRef big =
      LLVMBuildFSub(b, f32c(c, 1.0),
                    LLVMBuildFDiv(b, f32c(c, 2.0), LLVMBuildFAdd(b, e, f32c(c, 1.0), ""), ""), "");
  LLVMValueRef t =
      LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, a, f32c(c, 0.625), ""), small, big, "");
  return intrin2(c, "llvm.copysign", t, x);
}

/* erf(x) = sign(x) erf(a), a = |x|:
 * - a < 0.921875: a + a P(a^2), P a 6-term fit of erf(a) / a - 1 (the
 *   fmuladd adds a small correction to a, so the result is within about
 *   1 ulp, and tiny inputs, -0 included, come back as 2 a / sqrt(pi));
 * - a < 3.925: 1 - e^t(a), t an 11-term fit of log(erfc(a)) weighted by
 *   erfc(a), the size of its contribution to the result;
 * - above, 1 (erfc(3.925) is below half an ulp of 1); NaN stays NaN.
 * Both sides are computed and one selected, as in tanh. */
static LLVMValueRef erf_f32(cg_ctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  static const double p[] = {0x1.06eba6p-3,  -0x1.8126e6p-2, 0x1.ce1a78p-4,
                             -0x1.b68bf6p-6, 0x1.473ec4p-8,  -0x1.3a22dep-11};
  static const double t[] = {0x1.65c8e6p-15,  -0x1.20f1b0p+0,  -0x1.457060p-1,  -0x1.acb272p-4,
                             0x1.5f61f8p-6,   -0x1.ba2660p-10, -0x1.6dbff6p-11, 0x1.50ff52p-12,
                             -0x1.13874ep-14, 0x1.e2f006p-18,  -0x1.6e0f2ep-22};
  LLVMValueRef a = intrin1(c, "llvm.fabs", x);
  LLVMValueRef a2 = LLVMBuildFMul(b, a, a, "");
  LLVMValueRef ps = f32c(c, p[5]);
  for (int i = 4; i >= 0; i--)
    ps = fma_(c, ps, a2, f32c(c, p[i]));
  LLVMValueRef small = fma_(c, a, ps, a);
  LLVMValueRef tb = f32c(c, t[10]);
  for (int i = 9; i >= 0; i--)
    tb = fma_(c, tb, a, f32c(c, t[i]));
  LLVMValueRef big = LLVMBuildFSub(b, f32c(c, 1.0), exp_f32(c, tb), "");
  big = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, a, f32c(c, 3.925), ""), f32c(c, 1.0), big,
                        "");
  LLVMValueRef r =
      LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, a, f32c(c, 0.921875), ""), small, big, "");
  return intrin2(c, "llvm.copysign", r, x);
}

LLVMValueRef cg_erf(cg_ctx *c, ir_dtype dt, LLVMValueRef x) {
  if (dt == IR_F32) return erf_f32(c, x);
  LLVMTypeRef ty = cg_type(c, dt);
  return cg_call(c, "erf", ty, &ty, 1, &x);
}

LLVMValueRef cg_exp(cg_ctx *c, ir_dtype dt, LLVMValueRef x) {
  if (dt == IR_F32) return exp_f32(c, x);
  return intrin1(c, "llvm.exp", x);
}

LLVMValueRef cg_tanh(cg_ctx *c, ir_dtype dt, LLVMValueRef x) {
  if (dt == IR_F32) return tanh_f32(c, x);
  LLVMTypeRef t = cg_type(c, dt);
  return cg_call(c, "tanh", t, &t, 1, &x);
}

/* 1 / (1 + e^-x): e^-x = inf for very negative x gives exactly 0, and
 * e^-x -> 0 gives 1, so the result stays in [0, 1]. */
LLVMValueRef cg_sigmoid(cg_ctx *c, ir_dtype dt, LLVMValueRef x) {
  LLVMValueRef one = LLVMConstReal(cg_type(c, dt), 1.0);
  LLVMValueRef ex = cg_exp(c, dt, LLVMBuildFNeg(c->b, x, ""));
  return LLVMBuildFDiv(c->b, one, LLVMBuildFAdd(c->b, one, ex, ""), "");
}
