/* Parameter initialisers: the `init` and `scale` attributes of a param node
 * (ir/op_table.c, kl_init in frontend/kiln.h) turned into values, drawn from
 * the Philox fill streams so a (seed, stream) pair always gives the same
 * tensor. */
#ifndef KILN_RT_INIT_H
#define KILN_RT_INIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "runtime/tensor.h"

/* fan_in = numel / last dim and fan_out = last dim for rank >= 2 (x @ W
 * with W [in, out]); both the dim for rank 1; both 1 for a scalar. */
void rt_param_fans(const ir_type *t, double *fan_in, double *fan_out);

/* Fills t as `init` says: "normal" N(0, s^2), s = scale or 0.1; "uniform"
 * U(-s, s), s = scale or 0.1; "zeros"; "ones"; "xavier_uniform" bound
 * g sqrt(6 / (fan_in + fan_out)); "xavier_normal" std g sqrt(2 / (fan_in +
 * fan_out)), g = scale or 1; "kaiming_normal" std g / sqrt(fan_in);
 * "kaiming_uniform" bound sqrt(3) times that std, g = scale or sqrt(2).
 * Random draws come from the fill stream (seed, stream). False with d set
 * for an unknown init or a scale that is negative or not finite. */
bool rt_param_init(rt_tensor *t, const char *init, double scale, uint64_t seed, uint32_t stream,
                   ir_diag *d);

#endif
