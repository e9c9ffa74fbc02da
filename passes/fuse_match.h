/* The matcher behind the fuse-attention pass (passes/fuse_attention.c): for
 * one softmax, which canonical scale/mask layers sit under it and whether
 * the whole attention (or only scale_mask_softmax) can be fused, with the
 * reason when not. Private to passes/fuse_attention.c and its tests. */
#ifndef KILN_PASS_FUSE_MATCH_H
#define KILN_PASS_FUSE_MATCH_H

#include "ir/ir.h"

enum { FM_NONE, FM_ATTENTION, FM_SMS };
#define FM_MAX_SWALLOW 8

typedef struct fm_params {
  double scale;
  bool causal;
  double mask_value;
  int mask; /* src id of lengths or bias, -1 none */
} fm_params;

typedef struct fm_match {
  int kind; /* FM_* */
  int top;  /* node the fused one replaces: the matmul with V, or the softmax */
  int x;    /* scale_mask_softmax's input */
  int q, k, v;
  fm_params prm;
  double p;                    /* dropout inside the attention (0: none) */
  int64_t key;                 /* its mask stream */
  int swallow[FM_MAX_SWALLOW]; /* nodes removed besides top */
  int nswallow;
  char why_att[240], why_sms[240]; /* empty when that pattern matched */
} fm_match;

/* Matches around softmax node sm of g; uses = pass_use_counts(g), users[i]
 * = the (last) node using i, assigns = pass_assign_prefix(g). */
void fm_match_softmax(const ir_graph *g, int sm, const int *uses, const int *users,
                      const int *assigns, fm_match *m);

/* "%name" or "%<id> (op)": how messages refer to a node. */
void fm_node_str(const ir_graph *g, int id, char *buf, size_t len);

#endif
