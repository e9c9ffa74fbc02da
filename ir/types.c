/* dtypes, static shapes and numpy broadcasting, and the diagnostic value. */
#include <stdarg.h>
#include <string.h>

#include "ir/ir.h"

static const char *const dtype_names[IR_NUM_DTYPES] = {"f32", "f64", "i32", "i64", "bool"};
static const size_t dtype_sizes[IR_NUM_DTYPES] = {4, 8, 4, 8, 1};

const char *ir_dtype_name(ir_dtype dt) {
  return (unsigned)dt < IR_NUM_DTYPES ? dtype_names[dt] : "?";
}

bool ir_dtype_parse(const char *s, size_t len, ir_dtype *out) {
  for (int i = 0; i < IR_NUM_DTYPES; i++) {
    if (strlen(dtype_names[i]) == len && memcmp(dtype_names[i], s, len) == 0) {
      *out = (ir_dtype)i;
      return true;
    }
  }
  return false;
}

size_t ir_dtype_size(ir_dtype dt) { return dtype_sizes[dt]; }
bool ir_dtype_is_float(ir_dtype dt) { return dt == IR_F32 || dt == IR_F64; }
bool ir_dtype_is_int(ir_dtype dt) { return dt == IR_I32 || dt == IR_I64; }

ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims) {
  ir_type t = {.dtype = dt, .rank = rank};
  for (int i = 0; i < rank; i++)
    t.dims[i] = dims[i];
  return t;
}

int64_t ir_type_numel(const ir_type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

bool ir_shape_eq(const ir_type *a, const ir_type *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

bool ir_type_eq(const ir_type *a, const ir_type *b) {
  return a->dtype == b->dtype && ir_shape_eq(a, b);
}

char *ir_type_str(const ir_type *t, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "%s[", ir_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

bool ir_broadcast(const ir_type *a, const ir_type *b, ir_type *out) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  ir_type o = {.dtype = a->dtype, .rank = r};
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    o.dims[i] = da == 1 ? db : da;
  }
  *out = o;
  return true;
}

void ir_strides(const ir_type *t, int64_t *strides) {
  int64_t s = 1;
  for (int i = t->rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= t->dims[i];
  }
}

void ir_broadcast_strides(const ir_type *operand, const ir_type *result, int64_t *strides) {
  int64_t own[IR_MAX_RANK];
  ir_strides(operand, own);
  int off = result->rank - operand->rank;
  for (int i = 0; i < result->rank; i++) {
    int j = i - off;
    strides[i] = (j < 0 || operand->dims[j] == 1) ? 0 : own[j];
  }
}

int64_t ir_slice_base(const ir_type *t, const struct ir_ints *starts) {
  int64_t st[IR_MAX_RANK], base = 0;
  ir_strides(t, st);
  for (int i = 0; i < t->rank && i < starts->n; i++)
    base += starts->v[i] * st[i];
  return base;
}

void ir_diag_set(ir_diag *d, const char *fmt, ...) {
  if (!d) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
}
