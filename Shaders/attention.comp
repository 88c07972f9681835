#version 450
// Causal grouped-query attention over the KV cache, flash style: one workgroup per (query row,
// head) walks the visible positions in slices of the workgroup size, keeping a running maximum,
// a running softmax denominator and a rescaled output accumulator (online softmax), so no score
// row is ever stored. Query head h reads KV head h / (headCount / headCountKV). A window above 0
// limits a query at position P to keys P - window + 1 ... P; a softcap above 0 bounds every score
// to softcap * tanh(score / softcap).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "reduce.glsl"

const uint MAX_HEAD_DIM = 256;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float keys[]; };
layout(std430, binding = 2) readonly buffer V { float values[]; };
layout(std430, binding = 3) writeonly buffer Out { float outs[]; };

layout(push_constant) uniform Parameters {
    uint headDim, headCount, headCountKV, startPosition;
    uint qOffset, kOffset, vOffset, outOffset;
    float scale;
    uint window;
    float softcap;
} p;

shared float query[MAX_HEAD_DIM];
shared float weights[gl_WorkGroupSize.x];

void main() {
    uint h = gl_WorkGroupID.x;
    uint i = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationID.x;
    uint threads = gl_WorkGroupSize.x;
    uint qWidth = p.headCount * p.headDim;
    uint kvWidth = p.headCountKV * p.headDim;
    uint kvHead = h / (p.headCount / p.headCountKV);
    uint last = p.startPosition + i;
    uint first = p.window > 0u && last + 1u > p.window ? last + 1u - p.window : 0u;

    for (uint d = tid; d < p.headDim; d += threads) query[d] = q[p.qOffset + i * qWidth + h * p.headDim + d] * p.scale;
    barrier();

    const uint PER_THREAD = (MAX_HEAD_DIM + 31u) / 32u;  // the workgroup size is at least 32
    float acc[PER_THREAD];
    for (uint t = 0u; t < PER_THREAD; t++) acc[t] = 0.0;
    float runningMax = -1.0 / 0.0;
    float runningSum = 0.0;

    for (uint p0 = first; p0 <= last; p0 += threads) {
        uint pos = p0 + tid;
        float score = -1.0 / 0.0;
        if (pos <= last) {
            uint kb = p.kOffset + pos * kvWidth + kvHead * p.headDim;
            score = 0.0;
            for (uint d = 0u; d < p.headDim; d++) score += query[d] * keys[kb + d];
            if (p.softcap > 0.0) {
                float z = clamp(score / p.softcap, -15.0, 15.0);
                score = p.softcap * (1.0 - 2.0 / (exp(2.0 * z) + 1.0));
            }
        }
        float newMax = max(runningMax, workgroupMax(score));
        float weight = pos <= last ? exp(score - newMax) : 0.0;
        weights[tid] = weight;
        float sliceSum = workgroupSum(weight);  // its first barrier publishes `weights`
        float correction = exp(runningMax - newMax);
        runningSum = runningSum * correction + sliceSum;
        runningMax = newMax;
        uint count = min(threads, last + 1u - p0);
        for (uint t = 0u; t < PER_THREAD; t++) {
            uint d = tid + t * threads;
            if (d >= p.headDim) break;
            float sum = 0.0;
            uint vb = p.vOffset + p0 * kvWidth + kvHead * p.headDim + d;
            for (uint c = 0u; c < count; c++) sum += weights[c] * values[vb + c * kvWidth];
            acc[t] = acc[t] * correction + sum;
        }
    }

    float inverse = 1.0 / runningSum;
    for (uint t = 0u; t < PER_THREAD; t++) {
        uint d = tid + t * threads;
        if (d >= p.headDim) break;
        outs[p.outOffset + i * qWidth + h * p.headDim + d] = acc[t] * inverse;
    }
}
