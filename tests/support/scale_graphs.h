/* Generators of large, valid IR texts for the scale tests and the scale
 * benchmark: the shapes of graph that once made a pass or the driver
 * quadratic (issue 16). Plain C, no Criterion, so bench/ can link it. */
#ifndef KILN_TEST_SCALE_GRAPHS_H
#define KILN_TEST_SCALE_GRAPHS_H

/* graph @chain(%x: f32[W]): n elementwise nodes in a cycle of add c, mul c,
 * neg, tanh with one scalar constant c; every node reads the one before, so
 * nothing is CSE'd or constant-folded away; returns the last. malloc'd. */
char *sg_chain(int n, int width);
/* graph @rets(%x: f32[W]): %y = tanh(%x), returned k times. malloc'd. */
char *sg_returns(int k, int width);
/* graph @fan(%x: f32[W]): n nodes t_i = mul(x, c_i) each read once by a
 * running sum s_i = add(s_{i-1}, t_i): wide fan-out of %x, distinct scalar
 * constants. malloc'd. */
char *sg_fanout(int n, int width);
/* graph @params(%x: f32[W]): n parameters "w1".."wn" (zeros), a running
 * sum s_i = add(s_{i-1}, w_i) from %x: many parameters looked up by name.
 * malloc'd. */
char *sg_params(int n, int width);
/* Writes text to path; false on failure. */
int sg_write(const char *path, const char *text);

#endif
