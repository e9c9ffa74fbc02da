/* The memory guard behind kl_compile_opts.max_memory: what a run of a
 * compiled graph needs, added up from the types before anything is
 * allocated, so a graph too big for the machine is refused with the
 * buffers that make it big instead of failing (or swapping) later. */
#ifndef KILN_CG_MEM_GUARD_H
#define KILN_CG_MEM_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* The limit in bytes that kl_compile_opts.max_memory stands for: itself
 * when positive, the machine's physical memory for 0, -1 (none) when
 * negative or when the physical memory cannot be read. */
int64_t cg_mem_limit(int64_t max_memory);

/* Bytes one run of g needs: its arguments, its distinct parameters, its
 * intermediates (on the JIT the planned arena plus one buffer per value
 * outside it; on the reference interpreter the peak of the values alive at
 * once) and its outputs. */
int64_t cg_mem_need(const ir_graph *g, bool ref);

/* True when there is no limit (cg_mem_limit(max_memory) < 0) or the need
 * fits. Otherwise false with d saying the total against the limit and the
 * largest buffers (value, op, type, bytes, DSL file:line or IR text
 * line:col). */
bool cg_mem_check(const ir_graph *g, bool ref, int64_t max_memory, ir_diag *d);

#endif
