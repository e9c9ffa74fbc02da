/* kl_graph: the DSL's graph object wrapping an ir_graph. Lifecycle, the
 * sticky error, outputs, SSA names, parameter scopes, graph inputs and
 * parameters (which is where names and scopes matter), queries, printing. */
#include <stdlib.h>
#include <string.h>

#include "frontend/graph_ir.h"
#include "frontend/internal.h"

kl_graph *kl_graph_create(const char *name) {
  kl_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->ir = ir_graph_create(name);
  if (!g->ir) {
    free(g);
    return NULL;
  }
  return g;
}

void kl_graph_destroy(kl_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->nscopes; i++)
    free(g->scopes[i]);
  ir_graph_destroy(g->ir);
  free(g);
}

const char *kl_graph_error(const kl_graph *g) {
  if (!g || !g->ir || !g->ir->has_error) return NULL;
  return g->ir->error.msg;
}

bool kl_value_ok(kl_value v) { return v.g && v.g->ir && v.id >= 0 && v.id < v.g->ir->nnodes; }

const ir_graph *kl_graph_ir(const kl_graph *g) { return g ? g->ir : NULL; }

kl_value kl_none(void) { return kl__invalid(NULL); }

/* ---- names and scopes ------------------------------------------------ */

static bool is_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* An SSA name must read back from the IR text: [A-Za-z_][A-Za-z0-9_]*.
 * A leading digit would look like a numbered value (%0). */
static bool is_ssa_name(const char *s) {
  if (!s || !*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++)
    if (!is_ident_char(*s)) return false;
  return true;
}

/* A parameter name: dot-separated non-empty segments of [A-Za-z0-9_]. */
static bool is_param_name(const char *s) {
  if (!s || !*s) return false;
  bool seg_empty = true;
  for (; *s; s++) {
    if (*s == '.') {
      if (seg_empty) return false;
      seg_empty = true;
    } else if (is_ident_char(*s)) {
      seg_empty = false;
    } else {
      return false;
    }
  }
  return !seg_empty;
}

static int find_named(const kl_graph *g, const char *name, int except) {
  for (int i = 0; i < g->ir->nnodes; i++) {
    const ir_node *n = g->ir->nodes[i];
    if (i != except && n->name && strcmp(n->name, name) == 0) return i;
  }
  return -1;
}

/* Names node id `base`, or base_N when another node has it: ir_verify wants
 * SSA names unique, so clashes (every layer's "w") are settled here. N is
 * one more than any base_K in use, so one pass over the graph suffices. */
static void set_unique_name(kl_graph *g, int id, const char *base) {
  size_t blen = strlen(base);
  bool taken = false;
  long max = 0;
  for (int i = 0; i < g->ir->nnodes; i++) {
    const char *nm = g->ir->nodes[i]->name;
    if (i == id || !nm || strncmp(nm, base, blen) != 0) continue;
    if (nm[blen] == 0) {
      taken = true;
    } else if (nm[blen] == '_' && nm[blen + 1] && strlen(nm + blen + 1) <= 9 &&
               strspn(nm + blen + 1, "0123456789") == strlen(nm + blen + 1)) {
      long k = strtol(nm + blen + 1, NULL, 10);
      if (k > max) max = k;
    }
  }
  if (!taken) {
    ir_node_set_name(g->ir, id, base);
    return;
  }
  char *s = malloc(blen + 24);
  if (!s) {
    ir_node_set_name(g->ir, id, NULL); /* unnamed is valid; printed numbered */
    return;
  }
  snprintf(s, blen + 24, "%s_%ld", base, max + 1);
  ir_node_set_name(g->ir, id, s);
  free(s);
}

/* Input names are the graph's interface (safetensors keys), so an input
 * keeps its exact name: another input with it is an error (checked by the
 * callers), and a non-input holding it is renamed out of the way. */
static void claim_input_name(kl_graph *g, int id, const char *name) {
  int other = find_named(g, name, id);
  ir_node_set_name(g->ir, id, name);
  if (other >= 0) set_unique_name(g, other, name);
}

static bool is_input_named(const kl_graph *g, const char *name, int except) {
  int i = find_named(g, name, except);
  return i >= 0 && g->ir->nodes[i]->op == IR_OP_ARG;
}

kl_value kl_name(kl_value v, const char *name) {
  if (!kl_value_ok(v)) return v;
  kl_graph *g = v.g;
  if (!is_ssa_name(name)) {
    kl__error(g, NULL, 0, "name \"%s\": a value name must be [A-Za-z_][A-Za-z0-9_]*",
              name ? name : "(null)");
    return v;
  }
  if (g->ir->nodes[v.id]->op == IR_OP_ARG) {
    if (is_input_named(g, name, v.id)) {
      kl__error(g, NULL, 0, "name \"%s\": another input already has this name", name);
      return v;
    }
    claim_input_name(g, v.id, name);
  } else {
    set_unique_name(g, v.id, name);
  }
  return v;
}

void kl_scope_push(kl_graph *g, const char *scope) {
  if (!g) return;
  if (!scope || !*scope) {
    kl__error(g, NULL, 0, "scope \"%s\": a scope name must not be empty", scope ? scope : "(null)");
    return;
  }
  for (const char *c = scope; *c; c++) {
    if (!is_ident_char(*c)) {
      kl__error(g, NULL, 0, "scope \"%s\": a scope name may only contain [A-Za-z0-9_]", scope);
      return;
    }
  }
  if (g->nscopes >= KL_MAX_SCOPES) {
    kl__error(g, NULL, 0, "scope \"%s\": scopes nest at most %d deep", scope, KL_MAX_SCOPES);
    return;
  }
  char *copy = malloc(strlen(scope) + 1);
  if (!copy) {
    kl__error(g, NULL, 0, "scope \"%s\": out of memory", scope);
    return;
  }
  strcpy(copy, scope);
  g->scopes[g->nscopes++] = copy;
}

void kl_scope_pop(kl_graph *g) {
  if (!g) return;
  if (g->nscopes == 0) {
    kl__error(g, NULL, 0, "kl_scope_pop: no scope is open");
    return;
  }
  free(g->scopes[--g->nscopes]);
}

/* ---- outputs and queries --------------------------------------------- */

void kl_output(kl_value v) {
  if (!kl_value_ok(v) || v.g->ir->has_error) return;
  ir_graph *ir = v.g->ir;
  int *ids = malloc((size_t)(ir->nrets + 1) * sizeof *ids);
  if (!ids) {
    kl__error(v.g, NULL, 0, "kl_output: out of memory");
    return;
  }
  if (ir->nrets) memcpy(ids, ir->rets, (size_t)ir->nrets * sizeof *ids);
  ids[ir->nrets] = v.id;
  ir_set_returns(ir, ir->nrets + 1, ids);
  free(ids);
}

kl_dtype kl_dtype_of(kl_value v) {
  return kl_value_ok(v) ? (kl_dtype)kl__type_of(v)->dtype : (kl_dtype)-1;
}

int kl_rank(kl_value v) { return kl_value_ok(v) ? kl__type_of(v)->rank : -1; }

int64_t kl_dim(kl_value v, int axis) {
  if (!kl_value_ok(v)) return -1;
  const ir_type *t = kl__type_of(v);
  if (axis < 0) axis += t->rank;
  if (axis < 0 || axis >= t->rank) return -1;
  return t->dims[axis];
}

/* ---- printing ------------------------------------------------------ */

void kl_graph_print(const kl_graph *g, FILE *f) {
  if (!g || !f) return;
  ir_print(g->ir, f, NULL); /* NULL: the printer's defaults, locations on */
}

char *kl_graph_to_string(const kl_graph *g) {
  if (!g) return NULL;
  return ir_print_str(g->ir, NULL);
}

/* ---- inputs and parameters ------------------------------------------- */

/* Checks a leaf's dtype and shape; records "<what> \"name\": ..." on failure. */
static bool leaf_type_ok(kl_graph *g, const char *what, const char *name, kl_dtype dt,
                         const kl_ints *shape, const char *file, int line) {
  char msg[160];
  if (!kl__dtype_ok(dt)) {
    kl__error(g, file, line, "%s \"%s\": unknown dtype %d", what, name, (int)dt);
    return false;
  }
  if (!kl__shape_ok(shape, false, msg, sizeof msg)) {
    kl__error(g, file, line, "%s \"%s\": %s", what, name, msg);
    return false;
  }
  return true;
}

kl_value kl_input_at(kl_graph *g, const char *name, kl_dtype dt, kl_ints shape, const char *file,
                     int line) {
  if (!g) return kl_none();
  if (g->ir->has_error) return kl__invalid(g);
  if (!is_ssa_name(name)) {
    kl__error(g, file, line, "arg \"%s\": an input name must be [A-Za-z_][A-Za-z0-9_]*",
              name ? name : "(null)");
    return kl__invalid(g);
  }
  if (!leaf_type_ok(g, "arg", name, dt, &shape, file, line)) return kl__invalid(g);
  int prev = find_named(g, name, -1);
  if (prev >= 0 && g->ir->nodes[prev]->op == IR_OP_ARG) {
    char t[IR_TYPE_STRLEN];
    kl__error(g, file, line, "arg \"%s\": an input with this name already exists (%s)", name,
              ir_type_str(&g->ir->nodes[prev]->type, t, sizeof t));
    return kl__invalid(g);
  }
  ir_type ty = kl__type(dt, &shape);
  kl_value v = kl__node(g, IR_OP_ARG, 0, NULL, NULL, &ty, file, line);
  if (kl_value_ok(v)) claim_input_name(g, v.id, name);
  return v;
}

kl_value kl_param_init_at(kl_graph *g, const char *name, kl_dtype dt, kl_ints shape, kl_init init,
                          double scale, const char *file, int line) {
  if (!g) return kl_none();
  if (g->ir->has_error) return kl__invalid(g);
  if (!is_param_name(name)) {
    kl__error(g, file, line,
              "param \"%s\": a parameter name must be dot-separated [A-Za-z0-9_]+ parts",
              name ? name : "(null)");
    return kl__invalid(g);
  }
  size_t len = strlen(name) + 1;
  for (int i = 0; i < g->nscopes; i++)
    len += strlen(g->scopes[i]) + 1;
  char *full = malloc(len);
  if (!full) {
    kl__error(g, file, line, "param \"%s\": out of memory", name);
    return kl__invalid(g);
  }
  full[0] = 0;
  for (int i = 0; i < g->nscopes; i++) {
    strcat(full, g->scopes[i]);
    strcat(full, ".");
  }
  strcat(full, name);

  kl_value v = kl__invalid(g);
  if (!leaf_type_ok(g, "param", full, dt, &shape, file, line)) goto done;
  ir_type ty = kl__type(dt, &shape);
  /* The same full name again is the same parameter (tied weights). */
  for (int i = 0; i < g->ir->nnodes; i++) {
    const ir_node *n = g->ir->nodes[i];
    if (n->op != IR_OP_PARAM || !n->attrs[0].s || strcmp(n->attrs[0].s, full) != 0) continue;
    if (ir_type_eq(&n->type, &ty)) {
      v = (kl_value){g, i};
    } else {
      char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
      kl__error(g, file, line, "param \"%s\": declared as %s here but as %s before", full,
                ir_type_str(&ty, a, sizeof a), ir_type_str(&n->type, b, sizeof b));
    }
    goto done;
  }
  static const char *const inits[] = {
      "normal",         "uniform",       "zeros",           "ones",
      "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"};
  if ((unsigned)init >= sizeof inits / sizeof *inits || !(scale >= 0.0 && scale < 1e30)) {
    kl__error(g, file, line, "param \"%s\": unknown init %d or bad scale %g", full, (int)init,
              scale);
    goto done;
  }
  ir_attr attrs[4] = {kl__a_str(full), kl__a_str(inits[init]), kl__a_float(scale),
                      kl__a_bool(true)};
  v = kl__node(g, IR_OP_PARAM, 0, NULL, attrs, &ty, file, line);
  if (kl_value_ok(v)) {
    const char *leaf = strrchr(name, '.');
    leaf = leaf ? leaf + 1 : name;
    if (is_ssa_name(leaf)) set_unique_name(g, v.id, leaf);
  }
done:
  free(full);
  return v;
}

kl_value kl_param_at(kl_graph *g, const char *name, kl_dtype dt, kl_ints shape, const char *file,
                     int line) {
  return kl_param_init_at(g, name, dt, shape, KL_INIT_NORMAL, 0.0, file, line);
}
