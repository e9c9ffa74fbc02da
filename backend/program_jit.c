/* Running a program on JIT-compiled code: one buffer per node allocated at
 * compile time (so a run allocates nothing), or, for a graph with a memory
 * plan, one arena holding every intermediate at its planned offset; inputs
 * and outputs bound without copies where possible, FTZ/DAZ around the
 * step, and kernel faults and guard-byte damage turned into messages. A
 * parameter's node and its assign node share the parameter's storage, so
 * updates happen in place. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/program.h"
#include "runtime/numerics.h"
#include "runtime/ref_util.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

void cg_exec_destroy(cg_exec_state *s) {
  if (!s) return;
  for (int i = 0; s->owned && i < s->nnodes; i++)
    rt_free(s->owned[i]);
  for (int i = 0; s->param_base && i < s->nparams; i++)
    rt_free(s->param_base[i]);
  free(s->param_base);
  rt_free(s->arena_base);
  free(s->owned);
  free(s->bytes);
  free(s->alias);
  free(s->bufs);
  cg_jit_destroy(s->jit);
  rt_pool_destroy(s->pool);
  free(s);
}

static void *alloc_buffer(cg_exec_state *s, int id, size_t bytes, bool guard) {
  if (!guard) return s->owned[id] = rt_alloc(bytes);
  unsigned char *base = rt_alloc(bytes + 2 * GUARD);
  if (!base) return NULL;
  memset(base, GUARD_BYTE, GUARD);
  memset(base + GUARD + bytes, GUARD_BYTE, GUARD);
  s->owned[id] = base;
  return base + GUARD;
}

/* Moves every parameter's values into storage with guard bytes around it,
 * so the in-place writes of assign kernels are checked like other
 * buffers. The tensors keep pointing at the values; this state frees them. */
static bool guard_params(kl_program *p, cg_exec_state *s, ir_diag *d) {
  s->param_base = calloc((size_t)(p->nparams ? p->nparams : 1), sizeof *s->param_base);
  if (!s->param_base) return ir_diag_set(d, "out of memory"), false;
  s->nparams = p->nparams;
  for (int i = 0; i < p->nparams; i++) {
    rt_tensor *t = p->params[i];
    unsigned char *base = rt_alloc(t->bytes + 2 * GUARD);
    if (!base) return ir_diag_set(d, "out of memory for parameter '%s'", p->param_names[i]), false;
    memset(base, GUARD_BYTE, GUARD);
    memset(base + GUARD + t->bytes, GUARD_BYTE, GUARD);
    memcpy(base + GUARD, t->data, t->bytes);
    if (t->owned) rt_free(t->data);
    t->data = base + GUARD;
    t->owned = false;
    s->param_base[i] = base;
  }
  return true;
}

static void *param_data(kl_program *p, const ir_node *param) {
  return p->params[cg_program_param(p, ir_node_attr(param, "name")->s)]->data;
}

static const char *node_name(const ir_node *n, char *buf, size_t len) {
  if (n->name) return n->name;
  snprintf(buf, len, "%d", n->id);
  return buf;
}

/* The plan must be one the backend can follow: made for this graph, every
 * planned value an intermediate (leaves, assigns and returned values have
 * storage of their own) lying inside the arena at an aligned offset. The
 * planner guarantees this; checking costs one pass and turns a stale or
 * hand-made plan into a message instead of writes outside the arena. */
static bool plan_usable(const ir_graph *g, const ir_mem_plan *plan, const size_t *bytes,
                        ir_diag *d) {
  char nb[24];
  if (plan->nnodes != g->nnodes || plan->arena_bytes < 0)
    return ir_diag_set(d, "memory plan for %d nodes, the graph has %d", plan->nnodes, g->nnodes),
           false;
  /* returned values have storage of their own too (a scan of the returns
   * per node would be O(nodes * returns)) */
  bool *ret = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *ret);
  if (!ret) return ir_diag_set(d, "out of memory checking the memory plan"), false;
  for (int r = 0; r < g->nrets; r++)
    ret[g->rets[r]] = true;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    int64_t off = plan->offset[i];
    if (off < 0) continue;
    bool own = n->op == IR_OP_ARG || n->op == IR_OP_CONST || n->op == IR_OP_PARAM ||
               n->op == IR_OP_ASSIGN || n->op == IR_OP_STEP || ret[i];
    if (own || off % 64 != 0 || (uint64_t)off + bytes[i] > (uint64_t)plan->arena_bytes)
      return free(ret),
             ir_diag_set(d,
                         "memory plan: %s %%%s cannot live at +%lld (%zu bytes) in an arena of "
                         "%lld bytes",
                         ir_op_get(n->op)->name, node_name(n, nb, sizeof nb), (long long)off,
                         bytes[i], (long long)plan->arena_bytes),
             false;
  }
  free(ret);
  return true;
}

/* With guard bytes on, the guards go around the whole arena: a kernel
 * writing past the arena's ends is caught, one overrunning into a
 * neighbour inside it is not (compile with pass_opts.no_plan for guards
 * around every buffer). */
static bool alloc_arena(cg_exec_state *s, size_t bytes, bool guard) {
  size_t pad = guard ? GUARD : 0;
  if (!(s->arena_base = rt_alloc(bytes + 2 * pad))) return false;
  if (guard) {
    memset(s->arena_base, GUARD_BYTE, GUARD);
    memset(s->arena_base + GUARD + bytes, GUARD_BYTE, GUARD);
  }
  s->arena = s->arena_base + pad;
  s->arena_bytes = bytes;
  return true;
}

bool cg_exec_create(kl_program *p, ir_diag *d) {
  const ir_graph *g = p->g;
  cg_exec_state *s = calloc(1, sizeof *s);
  if (!s) return ir_diag_set(d, "out of memory"), false;
  p->jit = s;
  s->nnodes = g->nnodes;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  s->threads = p->opts.threads > 0 ? p->opts.threads : cores > 0 ? (int)cores : 1;
  if (s->threads > 1 && !(s->pool = rt_pool_create(s->threads)))
    return ir_diag_set(d, "cannot start %d threads", s->threads), false;
  cg_jit_opts jo = {.training = p->opts.training,
                    .check_numerics = p->opts.check_numerics,
                    .no_cache = p->opts.no_cache,
                    .cache_dir = p->opts.cache_dir};
  cg_jit_stats st = {0};
  if (p->opts.guard_bytes && !guard_params(p, s, d)) return false;
  if (!(s->jit = cg_jit_compile(g, &jo, &st, d))) return false;
  p->stats =
      (kl_compile_stats){.cache_hit = st.cache_hit,
                         .lower_ms = st.lower_ms,
                         .optimize_ms = st.optimize_ms,
                         .codegen_ms = st.codegen_ms,
                         .link_ms = st.link_ms,
                         .total_ms = st.lower_ms + st.optimize_ms + st.codegen_ms + st.link_ms};
  size_t n = (size_t)g->nnodes + 1;
  s->bufs = calloc(n, sizeof *s->bufs);
  s->owned = calloc(n, sizeof *s->owned);
  s->bytes = calloc(n, sizeof *s->bytes);
  s->alias = calloc(n, sizeof *s->alias);
  if (!s->bufs || !s->owned || !s->bytes || !s->alias)
    return ir_diag_set(d, "out of memory"), false;
  for (int i = 0; i < g->nnodes; i++)
    s->bytes[i] =
        (size_t)ir_type_numel(&g->nodes[i]->type) * ir_dtype_size(g->nodes[i]->type.dtype);
  const ir_mem_plan *plan = g->plan;
  if (plan && !plan_usable(g, plan, s->bytes, d)) return false;
  if (plan && !alloc_arena(s, (size_t)plan->arena_bytes, p->opts.guard_bytes))
    return ir_diag_set(d, "out of memory for the %lld-byte arena", (long long)plan->arena_bytes),
           false;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *node = g->nodes[i];
    if (node->op == IR_OP_ARG) continue; /* bound per run */
    if (node->op == IR_OP_CONST) {
      s->bufs[i] = node->data;
    } else if (node->op == IR_OP_PARAM) {
      s->bufs[i] = param_data(p, node);
    } else if (node->op == IR_OP_ASSIGN) {
      /* The kernel writes the new value straight into the parameter; the
       * verifier put every reader of the old value before it. */
      s->bufs[i] = param_data(p, g->nodes[node->in[0]]);
    } else if (plan && plan->offset[i] >= 0) {
      s->bufs[i] = s->arena + plan->offset[i];
    } else if (!(s->bufs[i] = alloc_buffer(s, i, s->bytes[i], p->opts.guard_bytes))) {
      return ir_diag_set(d, "out of memory for %zu bytes of %%%s", s->bytes[i],
                         node->name ? node->name : "?"),
             false;
    }
  }
  s->bufs[g->nnodes] = &s->exec;
  return true;
}

/* "model.c:12: %e: " exactly as the reference interpreter prefixes its
 * messages (one formatter, so the two backends cannot drift apart). */
static int node_prefix(const ir_node *n, char *buf, size_t len) {
  rt_node_where(n, buf, len);
  size_t k = strlen(buf);
  if (k + 2 < len) buf[k++] = ':', buf[k++] = ' ', buf[k] = 0;
  return (int)k;
}

static bool ranges_overlap(const void *a, size_t na, const void *b, size_t nb) {
  const char *x = a, *y = b;
  return na && nb && x < y + nb && y < x + na;
}

/* The --check-numerics message for the node kiln_step stopped at, in the
 * reference's format. Called before the outputs are unbound, while bufs
 * still point at every value the step computed. A region's body is re-run
 * on its operands unless the memory plan put the result over one of them. */
static void nonfinite_fault(kl_program *p, const ir_node *n, int64_t pos) {
  cg_exec_state *s = p->jit;
  rt_tensor out = {.type = n->type, .data = s->bufs[n->id], .bytes = s->bytes[n->id]};
  size_t nv = (size_t)(n->nin ? n->nin : 1);
  rt_tensor *views = n->body ? malloc(nv * sizeof *views) : NULL;
  const rt_tensor **in = n->body ? malloc(nv * sizeof *in) : NULL;
  bool keep = views && in;
  for (int k = 0; keep && k < n->nin; k++) {
    int a = n->in[k];
    views[k] = (rt_tensor){.type = p->g->nodes[a]->type, .data = s->bufs[a], .bytes = s->bytes[a]};
    in[k] = &views[k];
    keep = !ranges_overlap(out.data, out.bytes, views[k].data, views[k].bytes);
  }
  rt_ref_opts o = {.training = p->opts.training, .seed = p->opts.seed, .step = p->runs};
  rt_nonfinite_report(n, &out, pos, keep ? in : NULL, &o, &p->err);
  free(views);
  free(in);
}

static bool kernel_fault(kl_program *p) {
  const rt_exec *x = &p->jit->exec;
  if (x->err_node < 0 || x->err_node >= p->g->nnodes) return false;
  const ir_node *n = p->g->nodes[x->err_node];
  if (x->err_kind == RT_ERR_NONFINITE) return nonfinite_fault(p, n, x->err_pos), true;
  char pre[256];
  node_prefix(n, pre, sizeof pre);
  const char *what = x->err_kind == RT_ERR_LABEL ? "label" : "index";
  ir_diag_set(&p->err, "%s%s: %s %lld out of range [0, %lld) at position %lld", pre,
              ir_op_get(n->op)->name, what, (long long)x->err_val, (long long)x->err_limit,
              (long long)x->err_pos);
  return true;
}

static bool guards_intact(const unsigned char *base, size_t bytes) {
  const unsigned char *after = base + GUARD + bytes;
  for (int k = 0; k < GUARD; k++)
    if (base[k] != GUARD_BYTE || after[k] != GUARD_BYTE) return false;
  return true;
}

static bool guards_damaged(kl_program *p) {
  cg_exec_state *s = p->jit;
  for (int i = 0; s->param_base && i < s->nparams; i++) {
    if (!guards_intact(s->param_base[i], p->params[i]->bytes)) {
      ir_diag_set(&p->err,
                  "parameter '%s': a compiled kernel wrote outside its storage (guard bytes)",
                  p->param_names[i]);
      return true;
    }
  }
  if (s->arena_base && !guards_intact(s->arena_base, s->arena_bytes)) {
    ir_diag_set(&p->err, "a compiled kernel wrote outside the memory plan's arena (guard bytes)");
    return true;
  }
  for (int i = 0; i < s->nnodes; i++) {
    const unsigned char *base = s->owned[i];
    if (base && !guards_intact(base, s->bytes[i])) {
      char pre[256];
      node_prefix(p->g->nodes[i], pre, sizeof pre);
      ir_diag_set(&p->err, "%s%s: the compiled kernel wrote outside its buffer (guard bytes)", pre,
                  ir_op_get(p->g->nodes[i]->op)->name);
      return true;
    }
  }
  return false;
}

bool cg_exec_run(kl_program *p, kl_tensor *const *inputs, kl_tensor *const *outputs) {
  cg_exec_state *s = p->jit;
  const ir_graph *g = p->g;
  for (int i = 0, k = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_ARG) s->bufs[i] = inputs[k++]->t->data;
  /* Computed outputs are written straight into the caller's tensors (not
   * with guard bytes on: those live around the program's own buffers). */
  for (int i = 0; i < g->nnodes; i++)
    s->alias[i] = -1;
  for (int r = 0; r < g->nrets && !p->opts.guard_bytes; r++) {
    int id = g->rets[r];
    if (s->owned[id] && s->alias[id] < 0) {
      s->alias[id] = r;
      s->bufs[id] = outputs[r]->t->data;
    }
  }
  /* A returned parameter is its value before the run (the reference takes
   * outputs before writing assigns back); its storage is the program's,
   * never bound to the caller's tensor. */
  for (int r = 0; r < g->nrets; r++) {
    int id = g->rets[r];
    if (g->nodes[id]->op == IR_OP_PARAM) memcpy(outputs[r]->t->data, s->bufs[id], s->bytes[id]);
  }
  /* kiln's pool owns the cores; BLAS runs inside its chunks on one
   * thread, so OpenBLAS's own workers never start (and never spin on
   * sched_yield next to the pool: perf put a third of a step there). */
  openblas_set_num_threads(1);
  rt_exec_init(&s->exec, s->pool, p->opts.seed, p->runs);
  uint32_t fp = rt_fp_fast();
  cg_jit_step(s->jit)(s->bufs);
  rt_fp_restore(fp);
  bool fault = kernel_fault(p);
  for (int i = 0; i < g->nnodes; i++)
    if (s->alias[i] >= 0) s->bufs[i] = (unsigned char *)s->owned[i];
  if (fault || (p->opts.guard_bytes && guards_damaged(p))) return false;
  for (int r = 0; r < g->nrets; r++) {
    int id = g->rets[r];
    if (s->alias[id] == r || g->nodes[id]->op == IR_OP_PARAM) continue;
    const void *src = s->alias[id] >= 0 ? outputs[s->alias[id]]->t->data : s->bufs[id];
    memcpy(outputs[r]->t->data, src, s->bytes[id]);
  }
  return true;
}
