/* The canonical IR text printer (DESIGN.md, "IR text format"). Output is a
 * fixed point of parse+print: display names are computed up front so the
 * text names every value uniquely, and numbers use shortest round-trip
 * forms. Everything is built in one growable buffer; ir_print writes it. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/numfmt.h"
#include "ir/sha256.h"

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra) {
  if (b->oom || b->n + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + extra + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return;
  }
  b->p = p;
  b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t len) {
  sb_reserve(b, len);
  if (b->oom) return;
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  if ((size_t)k < sizeof tmp) {
    sb_put(b, tmp, (size_t)k);
    return;
  }
  sb_reserve(b, (size_t)k);
  if (b->oom) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

static void sb_string(sbuf *b, const char *s) {
  sb_puts(b, "\"");
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"')
      sb_puts(b, "\\\"");
    else if (*p == '\\')
      sb_puts(b, "\\\\");
    else if (*p == '\n')
      sb_puts(b, "\\n");
    else if (*p == '\t')
      sb_puts(b, "\\t");
    else if (*p < 0x20 || *p == 0x7f)
      sb_printf(b, "\\x%02x", *p);
    else
      sb_put(b, (const char *)p, 1);
  }
  sb_puts(b, "\"");
}

/* ---- display names -------------------------------------------------- */

/* Open-addressing set of strings, to find free names quickly. */
typedef struct nameset {
  const char **slot;
  size_t cap;
} nameset;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static bool ns_has(const nameset *ns, const char *s) {
  for (size_t i = hash_str(s) & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
    if (!ns->slot[i]) return false;
    if (strcmp(ns->slot[i], s) == 0) return true;
  }
}

static void ns_add(nameset *ns, const char *s) {
  size_t i = hash_str(s) & (ns->cap - 1);
  while (ns->slot[i])
    i = (i + 1) & (ns->cap - 1);
  ns->slot[i] = s;
}

/* Sanitised copy of a name (characters outside [A-Za-z0-9_.] become '_'),
 * or NULL when the node counts as unnamed (no name, empty, all digits). */
static char *sanitize(const char *name) {
  if (!name || !*name) return NULL;
  size_t len = strlen(name);
  char *s = malloc(len + 24); /* room for a "_N" suffix */
  if (!s) return NULL;
  bool digits = true;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.';
    s[i] = ok ? c : '_';
    if (!(c >= '0' && c <= '9')) digits = false;
  }
  s[len] = 0;
  if (digits) {
    free(s);
    return NULL;
  }
  return s;
}

/* Print order: arguments first (they are in the header), then the body.
 * Names are assigned in this order so that re-parsing, which creates the
 * nodes in this order, gives the same names back. */
static int *print_order(const ir_graph *g) {
  int *ord = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *ord);
  if (!ord) return NULL;
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_ARG) ord[k++] = i;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op != IR_OP_ARG) ord[k++] = i;
  return ord;
}

/* Fills names[id] with malloc'd display names. Returns false on OOM. */
static bool display_names(const ir_graph *g, const int *ord, char **names) {
  nameset ns = {0};
  ns.cap = 16;
  while (ns.cap < 2 * (size_t)g->nnodes + 2)
    ns.cap *= 2;
  ns.slot = calloc(ns.cap, sizeof *ns.slot);
  if (!ns.slot) return false;
  bool ok = true;
  for (int k = 0; k < g->nnodes && ok; k++) {
    int id = ord[k];
    char *s = sanitize(g->nodes[id]->name);
    if (!s) continue;
    if (ns_has(&ns, s)) {
      size_t base = strlen(s);
      for (long j = 1;; j++) {
        snprintf(s + base, 24, "_%ld", j);
        if (!ns_has(&ns, s)) break;
      }
    }
    names[id] = s;
    ns_add(&ns, s);
  }
  long next = 0;
  for (int k = 0; k < g->nnodes && ok; k++) {
    int id = ord[k];
    if (names[id]) continue;
    char *s = malloc(24);
    if (!s) {
      ok = false;
      break;
    }
    do
      snprintf(s, 24, "%ld", next++);
    while (ns_has(&ns, s));
    names[id] = s;
    ns_add(&ns, s);
  }
  free(ns.slot);
  return ok;
}

/* ---- values ------------------------------------------------------------ */

static void sb_type(sbuf *b, const ir_type *t) {
  char buf[IR_TYPE_STRLEN];
  sb_puts(b, ir_type_str(t, buf, sizeof buf));
}

static void sb_ints(sbuf *b, const ir_ints *l) {
  sb_puts(b, "[");
  for (int i = 0; i < l->n; i++)
    sb_printf(b, i ? ", %" PRId64 : "%" PRId64, l->v[i]);
  sb_puts(b, "]");
}

static void sb_attr(sbuf *b, const ir_attr *a) {
  char num[IR_NUMFMT_LEN];
  switch (a->kind) {
  case IR_ATTR_INT: sb_printf(b, "%" PRId64, a->i); break;
  case IR_ATTR_FLOAT: sb_puts(b, ir_fmt_f64(a->f, num, sizeof num)); break;
  case IR_ATTR_BOOL: sb_puts(b, a->b ? "true" : "false"); break;
  case IR_ATTR_STR: sb_string(b, a->s); break;
  case IR_ATTR_DTYPE: sb_string(b, ir_dtype_name(a->dt)); break;
  case IR_ATTR_INTS: sb_ints(b, &a->ints); break;
  }
}

static bool attr_is_default(const ir_attr *a, const ir_attr *d) {
  switch (a->kind) {
  case IR_ATTR_INT: return a->i == d->i;
  case IR_ATTR_FLOAT: return a->f == d->f && signbit(a->f) == signbit(d->f);
  case IR_ATTR_BOOL: return a->b == d->b;
  case IR_ATTR_STR: return strcmp(a->s ? a->s : "", d->s ? d->s : "") == 0;
  case IR_ATTR_DTYPE: return a->dt == d->dt;
  case IR_ATTR_INTS: return a->ints.n == 0;
  }
  return false;
}

static void sb_elem(sbuf *b, ir_dtype dt, const void *data, int64_t i) {
  char num[IR_NUMFMT_LEN];
  switch (dt) {
  case IR_F32: sb_puts(b, ir_fmt_f32(((const float *)data)[i], num, sizeof num)); break;
  case IR_F64: sb_puts(b, ir_fmt_f64(((const double *)data)[i], num, sizeof num)); break;
  case IR_I32: sb_printf(b, "%" PRId32, ((const int32_t *)data)[i]); break;
  case IR_I64: sb_printf(b, "%" PRId64, ((const int64_t *)data)[i]); break;
  case IR_BOOL: sb_puts(b, ((const uint8_t *)data)[i] ? "true" : "false"); break;
  default: sb_puts(b, "?"); break;
  }
}

static void sb_const(sbuf *b, const ir_node *n, const ir_print_opts *o) {
  int64_t numel = ir_type_numel(&n->type);
  sb_puts(b, "const(");
  if (!n->data) {
    sb_puts(b, "<no data>)");
    return;
  }
  if (o->elide_consts > 0 && numel > o->elide_consts) {
    uint8_t h[32];
    ir_sha256(n->data, (size_t)numel * ir_dtype_size(n->type.dtype), h);
    sb_printf(b, "<folded %" PRId64 " x %s, sha=", numel, ir_dtype_name(n->type.dtype));
    for (int i = 0; i < 8; i++)
      sb_printf(b, "%02x", h[i]);
    sb_puts(b, ">)");
    return;
  }
  if (n->type.rank == 0) {
    sb_elem(b, n->type.dtype, n->data, 0);
  } else {
    sb_puts(b, "dense [");
    for (int64_t i = 0; i < numel; i++) {
      if (i) sb_puts(b, ", ");
      sb_elem(b, n->type.dtype, n->data, i);
    }
    sb_puts(b, "]");
  }
  sb_puts(b, ")");
}

/* Location files are written raw up to the line end, so characters that
 * would end or confuse the comment are replaced. */
static void sb_loc(sbuf *b, const ir_loc *l) {
  sb_puts(b, "  # ");
  for (const unsigned char *p = (const unsigned char *)l->file; *p; p++) {
    char c = (*p < 0x20 || *p == 0x7f) ? '_' : (char)*p;
    sb_put(b, &c, 1);
  }
  sb_printf(b, ":%d", l->line);
}

/* " {a = 1, b = 2}" for the attributes from `first` on that are required,
 * always printed, or not at their default. */
static void sb_attrs(sbuf *b, const ir_node *n, int first) {
  const ir_op_info *info = ir_op_get(n->op);
  int shown = 0;
  for (int i = first; i < info->nattrs; i++) {
    const ir_attr_spec *s = &info->attrs[i];
    if (!s->required && !s->print_always && attr_is_default(&n->attrs[i], &s->dflt)) continue;
    sb_printf(b, "%s%s = ", shown++ ? ", " : " {", s->name);
    sb_attr(b, &n->attrs[i]);
  }
  if (shown) sb_puts(b, "}");
}

static bool sb_graph(sbuf *b, const ir_graph *g, const ir_print_opts *o, int indent,
                     const ir_loc *loc);

static void sb_indent(sbuf *b, int n) {
  for (int i = 0; i < n; i++)
    sb_put(b, " ", 1);
}

static void sb_node(sbuf *b, const ir_graph *g, const ir_node *n, char **names,
                    const ir_print_opts *o, int indent) {
  const ir_op_info *info = ir_op_get(n->op);
  sb_indent(b, indent);
  sb_printf(b, "%%%s = ", names[n->id]);
  if (n->op == IR_OP_CONST) {
    sb_const(b, n, o);
  } else if (n->op == IR_OP_PARAM) {
    const ir_attr *a = ir_node_attr(n, "name");
    sb_puts(b, "param(");
    sb_string(b, a ? a->s : "");
    sb_puts(b, ")");
    sb_attrs(b, n, 1);
  } else {
    sb_printf(b, "%s(", info->name);
    for (int i = 0; i < n->nin; i++) {
      int in = n->in[i];
      bool valid = in >= 0 && in < g->nnodes;
      sb_printf(b, "%s%%%s", i ? ", " : "", valid ? names[in] : "?");
    }
    sb_puts(b, ")");
    sb_attrs(b, n, 0);
  }
  sb_puts(b, " : ");
  sb_type(b, &n->type);
  if (n->body) {
    /* the location goes after the body's '{', where the parser looks */
    sb_puts(b, " region");
    if (!sb_graph(b, n->body, o, indent, &n->loc)) b->oom = true;
  } else if (o->locs && n->loc.file && n->loc.file[0] && n->loc.line >= 0) {
    sb_loc(b, &n->loc);
  }
  sb_puts(b, "\n");
}

/* "(%a: T, ...) {  # loc" then the nodes and the return indented by
 * indent + 2, then "}" at indent (no newline). */
static bool sb_graph(sbuf *b, const ir_graph *g, const ir_print_opts *o, int indent,
                     const ir_loc *loc) {
  int *ord = print_order(g);
  char **names = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *names);
  bool ok = ord && names && display_names(g, ord, names);
  if (ok) {
    sb_puts(b, "(");
    int nargs = 0;
    for (int k = 0; k < g->nnodes && g->nodes[ord[k]]->op == IR_OP_ARG; k++) {
      const ir_node *n = g->nodes[ord[k]];
      sb_printf(b, "%s%%%s: ", nargs++ ? ", " : "", names[n->id]);
      sb_type(b, &n->type);
    }
    sb_puts(b, ") {");
    if (loc && o->locs && loc->file && loc->file[0] && loc->line >= 0) sb_loc(b, loc);
    sb_puts(b, "\n");
    for (int k = nargs; k < g->nnodes; k++)
      sb_node(b, g, g->nodes[ord[k]], names, o, indent + 2);
    sb_indent(b, indent + 2);
    sb_puts(b, "return");
    for (int i = 0; i < g->nrets; i++) {
      int r = g->rets[i];
      sb_printf(b, "%s%%%s", i ? ", " : " ", r >= 0 && r < g->nnodes ? names[r] : "?");
    }
    sb_puts(b, "\n");
    sb_indent(b, indent);
    sb_puts(b, "}");
  }
  if (names)
    for (int i = 0; i < g->nnodes; i++)
      free(names[i]);
  free(names);
  free(ord);
  return ok;
}

char *ir_print_str(const ir_graph *g, const ir_print_opts *opts) {
  ir_print_opts o = {.locs = true, .elide_consts = 0};
  if (opts) o = *opts;
  sbuf b = {0};
  char *gname = sanitize(g->name);
  sb_printf(&b, "graph @%s", gname ? gname : (g->name && g->name[0] ? g->name : "main"));
  free(gname);
  if (!sb_graph(&b, g, &o, 0, NULL)) b.oom = true;
  sb_puts(&b, "\n");
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

void ir_print(const ir_graph *g, FILE *f, const ir_print_opts *opts) {
  char *s = ir_print_str(g, opts);
  if (!s) {
    fputs("# out of memory while printing the graph\n", f);
    return;
  }
  fputs(s, f);
  free(s);
}

/* The memory plan as comments after the graph (the parser skips them):
 * the arena against one buffer per value, then each planned value's
 * offset and size, in print order and with the printer's names. */
void ir_print_plan(const ir_graph *g, FILE *f) {
  const ir_mem_plan *p = g->plan;
  if (!p || p->nnodes != g->nnodes) {
    fputs(p ? "# memory plan: stale (made for another graph)\n"
            : "# memory plan: none (one buffer per value)\n",
          f);
    return;
  }
  int *ord = print_order(g);
  char **names = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *names);
  if (!ord || !names || !display_names(g, ord, names)) {
    fputs("# out of memory while printing the memory plan\n", f);
  } else {
    int nv = 0;
    for (int i = 0; i < g->nnodes; i++)
      nv += p->offset[i] >= 0;
    double saved =
        p->naive_bytes > 0 ? 100.0 * (1.0 - (double)p->arena_bytes / (double)p->naive_bytes) : 0;
    fprintf(f,
            "# memory plan: arena %lld bytes, %d values (one buffer each: %lld bytes; %.1f%% "
            "smaller)\n",
            (long long)p->arena_bytes, nv, (long long)p->naive_bytes, saved);
    for (int k = 0; k < g->nnodes; k++) {
      const ir_node *n = g->nodes[ord[k]];
      if (p->offset[n->id] < 0) continue;
      fprintf(f, "#   %%%s  +%lld  %lld\n", names[n->id], (long long)p->offset[n->id],
              (long long)(ir_type_numel(&n->type) * (int64_t)ir_dtype_size(n->type.dtype)));
    }
  }
  if (names)
    for (int i = 0; i < g->nnodes; i++)
      free(names[i]);
  free(names);
  free(ord);
}
