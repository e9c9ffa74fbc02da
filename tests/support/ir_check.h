/* Small checks shared by the pass and fused-kernel tests: parsing a graph
 * from text (asserting), counting an op's nodes, and the relative error of
 * two float tensors. */
#ifndef KILN_TEST_IR_CHECK_H
#define KILN_TEST_IR_CHECK_H

#include "backend/kiln_run.h"
#include "ir/ir.h"
#include "runtime/tensor.h"

/* Parses text (asserting it parses); the caller destroys the graph. */
ir_graph *tc_parse(const char *text);
/* Nodes of g (not counting region bodies) whose op is op. */
int tc_count_op(const ir_graph *g, ir_op op);
/* Element i of an f32 or f64 (dt) tensor, as a double. */
double tc_elem(kl_tensor *t, ir_dtype dt, int64_t i);
/* max |a - b| / (1 + max |b|) over every element of two f32 or f64 (dt)
 * tensors of equal size, asserting a holds no NaN or infinity. */
double tc_rel_err(kl_tensor *a, kl_tensor *b, ir_dtype dt);
/* One tensor per argument of g, NULL-terminated: floats U(-1, 1),
 * integers in [0, int_hi], from a xorshift stream seeded by seed. */
rt_tensor **tc_random_args(const ir_graph *g, uint64_t seed, int64_t int_hi);
/* Every output of g on the reference interpreter (dropout seed 42, step
 * 3), NULL-terminated; asserts that it runs. */
rt_tensor **tc_ref_outputs(const ir_graph *g, rt_tensor **args, bool training);
/* Destroys a NULL-terminated tensor array and the array. */
void tc_free_tensors(rt_tensor **a);

#endif
