// op_families.h: the op-table entries of the ops the mobile and modern CNN
// families need (issue 20): shape inference, forward, backward and decisions
// glue from graph nodes to ops/hardtanh.c ... ops/channel_slice.c.
// engine/op_table.c lists them in vc_cpu_ops.
#pragma once
#include "engine.h"

int fam_unary_infer(const vc_model *m, vc_node *n, vc_error *err);
int fam_hardtanh_infer(const vc_model *m, vc_node *n, vc_error *err);
void fam_hardtanh_fwd(vc_run *r, int i);
void fam_hardtanh_bwd(vc_run *r, int i, int params);
void fam_hardtanh_decide(const vc_run *r, int i, void *out);
void fam_hardswish_fwd(vc_run *r, int i);
void fam_hardswish_bwd(vc_run *r, int i, int params);
void fam_hardsigmoid_fwd(vc_run *r, int i);
void fam_hardsigmoid_bwd(vc_run *r, int i, int params);
void fam_saved_region_decide(const vc_run *r, int i, void *out);
void fam_sigmoid_fwd(vc_run *r, int i);
void fam_sigmoid_bwd(vc_run *r, int i, int params);
void fam_silu_fwd(vc_run *r, int i);
void fam_silu_bwd(vc_run *r, int i, int params);
void fam_gelu_fwd(vc_run *r, int i);
void fam_gelu_bwd(vc_run *r, int i, int params);
int fam_mul_infer(const vc_model *m, vc_node *n, vc_error *err);
void fam_mul_fwd(vc_run *r, int i);
void fam_mul_bwd(vc_run *r, int i, int params);
int fam_layernorm2d_infer(const vc_model *m, vc_node *n, vc_error *err);
void fam_layernorm2d_fwd(vc_run *r, int i);
void fam_layernorm2d_bwd(vc_run *r, int i, int params);
int fam_shuffle_infer(const vc_model *m, vc_node *n, vc_error *err);
void fam_shuffle_fwd(vc_run *r, int i);
void fam_shuffle_bwd(vc_run *r, int i, int params);
int fam_slice_infer(const vc_model *m, vc_node *n, vc_error *err);
void fam_slice_fwd(vc_run *r, int i);
void fam_slice_bwd(vc_run *r, int i, int params);
