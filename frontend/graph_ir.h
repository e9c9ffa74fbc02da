/* The IR inside a DSL graph, for the layers that take an ir_graph (the
 * driver's public compile, passes, tests and tools). Internal: the public
 * calls take the kl_graph itself. */
#ifndef KILN_FRONTEND_GRAPH_IR_H
#define KILN_FRONTEND_GRAPH_IR_H

#include "frontend/kiln.h"
#include "ir/ir.h"

/* Borrowed, valid while g lives; NULL for a NULL g. */
const ir_graph *kl_graph_ir(const kl_graph *g);

#endif
