#version 450
// y[i, rowStart + r] = x[i, :] · w[r, :] for a few tokens (decode): each weight row is read once
// for all `n` (<= MAX_TOKENS) tokens and dequantised in registers.
//
// SUBGROUP=1: one subgroup per row, `rowsPerGroup` rows per workgroup, reduced by subgroupAdd
// with no barrier. SUBGROUP=0 (devices without subgroup arithmetic): one row per workgroup,
// reduced through shared memory.
#extension GL_GOOGLE_include_directive : require
#if SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
#define MAX_TOKENS 8

#include "dequant.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Parameters {
    uint n, k, rows, rowBytes;      // tokens, inputs, weight rows in this piece, bytes per row
    uint xOffset, yOffset, yStride; // in floats
    uint rowStart;                  // first output column of this piece
    uint groupsX;                   // workgroups along x (rows wrap into y past the 65535 limit)
    uint wBase;                     // byte offset of row 0 in the binding
    uint rowsPerGroup;              // SUBGROUP=1: rows per workgroup
} p;

// acc[i] += x[i, :] · w[r, :] over the 8-element groups lane, lane + lanes, ...
void accumulate(uint r, uint lane, uint lanes, inout float acc[MAX_TOKENS]) {
    uint rowBase = p.wBase + r * p.rowBytes;
    uint groups = (p.k + 7u) / 8u;
    for (uint g = lane; g < groups; g += lanes) {
        uint e = 8u * g;
        float w[8];
        load8(rowBase, e, p.k, w);
        uint last = min(8u, p.k - e);
        for (uint i = 0u; i < p.n; i++) {
            uint xb = p.xOffset + i * p.k + e;
            float s = 0.0;
            if (last == 8u) {
                for (uint t = 0u; t < 8u; t++) s += w[t] * x[xb + t];
            } else {
                for (uint t = 0u; t < last; t++) s += w[t] * x[xb + t];
            }
            acc[i] += s;
        }
    }
}

#if SUBGROUP
void main() {
    uint group = gl_WorkGroupID.y * p.groupsX + gl_WorkGroupID.x;
    // however many subgroups the driver made, together they cover the workgroup's rows
    for (uint slot = gl_SubgroupID; slot < p.rowsPerGroup; slot += gl_NumSubgroups) {
        uint r = group * p.rowsPerGroup + slot;
        if (r >= p.rows) return;
        float acc[MAX_TOKENS];
        for (uint i = 0u; i < MAX_TOKENS; i++) acc[i] = 0.0;
        accumulate(r, gl_SubgroupInvocationID, gl_SubgroupSize, acc);
        for (uint i = 0u; i < p.n; i++) {
            float s = subgroupAdd(acc[i]);
            if (subgroupElect()) y[p.yOffset + i * p.yStride + p.rowStart + r] = s;
        }
    }
}
#else
shared float partial[MAX_TOKENS][gl_WorkGroupSize.x];

void main() {
    uint r = gl_WorkGroupID.y * p.groupsX + gl_WorkGroupID.x;
    if (r >= p.rows) return;  // uniform across the workgroup
    uint tid = gl_LocalInvocationID.x;
    float acc[MAX_TOKENS];
    for (uint i = 0u; i < MAX_TOKENS; i++) acc[i] = 0.0;
    accumulate(r, tid, gl_WorkGroupSize.x, acc);
    for (uint i = 0u; i < p.n; i++) partial[i][tid] = acc[i];
    barrier();
    for (uint width = gl_WorkGroupSize.x / 2u; width > 0u; width /= 2u) {
        if (tid < width) {
            for (uint i = 0u; i < p.n; i++) partial[i][tid] += partial[i][tid + width];
        }
        barrier();
    }
    if (tid < p.n) y[p.yOffset + tid * p.yStride + p.rowStart + r] = partial[tid][0];
}
#endif
