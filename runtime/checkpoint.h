/* Training checkpoints: named tensors plus run metadata (step, RNG seed,
 * data position, model name and config, optimizer kind) in one
 * safetensors file that PyTorch's safetensors loader reads as is. Saving
 * is atomic (runtime/atomic_file.h); loading validates the file and,
 * given the tensors a model expects, every name, dtype and shape. */
#ifndef KILN_RT_CHECKPOINT_H
#define KILN_RT_CHECKPOINT_H

#include "ir/ir.h"
#include "runtime/tensor.h"

/* Well-known metadata keys. safetensors metadata is string -> string, so
 * numbers are stored as decimal text; save and load check that the integer
 * keys hold integers (step, data position: >= 0) and the config valid
 * JSON. Other keys are free-form. */
#define RT_CKPT_STEP "step"
#define RT_CKPT_SEED "seed"
#define RT_CKPT_DATA_POS "data_position"
#define RT_CKPT_MODEL "model"
#define RT_CKPT_CONFIG "model_config" /* JSON text */
#define RT_CKPT_OPTIMIZER "optimizer" /* e.g. "sgd", "adam" */
/* Written by save unless the caller sets it: Hugging Face loaders expect
 * "pt" for PyTorch-layout files. */
#define RT_CKPT_FORMAT "format"

typedef struct rt_ckpt_tensor {
  const char *name;
  const rt_tensor *t; /* borrowed */
} rt_ckpt_tensor;

typedef struct rt_ckpt_meta {
  const char *key, *value;
} rt_ckpt_meta;

/* Writes the tensors (in the given order) and metadata to path atomically:
 * on failure path is neither created nor changed and d names the file and
 * the problem (duplicate or empty tensor name, NULL tensor, bad metadata
 * value, I/O error). */
bool rt_checkpoint_save(const char *path, const rt_ckpt_tensor *tensors, int n,
                        const rt_ckpt_meta *meta, int nmeta, ir_diag *d);
/* The same with metadata given as a JSON object: string values are stored
 * as they are, integers as decimal text, anything else (reals, booleans,
 * null, objects, arrays; e.g. an inline model config) as compact JSON. */
bool rt_checkpoint_save_json(const char *path, const rt_ckpt_tensor *tensors, int n,
                             const char *meta_json, ir_diag *d);

/* What a loader expects to find. */
typedef struct rt_ckpt_expect {
  const char *name;
  ir_type type;
} rt_ckpt_expect;

typedef struct rt_checkpoint rt_checkpoint;

/* Reads and validates path (missing, truncated or corrupt files and bad
 * well-known metadata give "PATH: what is wrong"). With expect (n_expect
 * entries) it also requires exactly those tensors: a missing one, an extra
 * one, or one whose dtype/shape differs ("PATH: tensor 'w': checkpoint has
 * f32[2,3], expected f32[3,2]") is an error. expect may be NULL to accept
 * any tensors. Returns an owned object or NULL with d set. */
rt_checkpoint *rt_checkpoint_load(const char *path, const rt_ckpt_expect *expect, int n_expect,
                                  ir_diag *d);
void rt_checkpoint_destroy(rt_checkpoint *ck);

/* Checks a loaded checkpoint against expect as rt_checkpoint_load does;
 * allow_extra accepts tensors that are not expected (e.g. loading only the
 * model weights from a checkpoint that also holds optimizer state). */
bool rt_checkpoint_check(const rt_checkpoint *ck, const rt_ckpt_expect *expect, int n_expect,
                         bool allow_extra, ir_diag *d);

/* Borrowed lookups, valid until destroy; NULL when absent. */
const rt_tensor *rt_checkpoint_tensor(const rt_checkpoint *ck, const char *name);
const char *rt_checkpoint_meta(const rt_checkpoint *ck, const char *key);
int rt_checkpoint_count(const rt_checkpoint *ck);
const char *rt_checkpoint_name(const rt_checkpoint *ck, int i); /* file order */
const char *rt_checkpoint_path(const rt_checkpoint *ck);
/* The metadata keys in file order, RT_CKPT_FORMAT included. */
int rt_checkpoint_meta_count(const rt_checkpoint *ck);
const char *rt_checkpoint_meta_key(const rt_checkpoint *ck, int i);
/* Metadata key as a non-negative integer; false with "PATH: metadata 'KEY' is
 * missing" / "... is not an integer: 'TEXT'" in d. */
bool rt_checkpoint_meta_i64(const rt_checkpoint *ck, const char *key, int64_t *out, ir_diag *d);
/* The same for unsigned values such as the RNG seed. */
bool rt_checkpoint_meta_u64(const rt_checkpoint *ck, const char *key, uint64_t *out, ir_diag *d);

#endif
