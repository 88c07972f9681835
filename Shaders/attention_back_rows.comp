#version 450
// Attention backward, pass 1: one workgroup per (query head, query row i) of n rows at positions
// start ..< start + n over the start + n keys. Writes the row's softmax P[h][i][·] and score
// gradients dS = P (dP - D) · scale with dP[j] = dOut_i · v_j and D = Σ P dP, then
// dq_i = Σ_j dS[j] k_j. Positions before the window's start and after the row's stay unwritten
// (pass 2 never reads them).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "reduce.glsl"

const uint MAX_HEAD_DIM = 256;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float keys[]; };
layout(std430, binding = 2) readonly buffer V { float values[]; };
layout(std430, binding = 3) readonly buffer G { float dOut[]; };
layout(std430, binding = 4) buffer P { float probs[]; };
layout(std430, binding = 5) buffer DS { float scoreGrads[]; };
layout(std430, binding = 6) writeonly buffer DQ { float dq[]; };

layout(push_constant) uniform Parameters {
    uint headDim, headCount, headCountKV, n;
    uint qOffset, kOffset, vOffset, gOffset, pOffset, dqOffset;
    float scale;
    uint window, start;
} p;

shared float query[MAX_HEAD_DIM];
shared float grad[MAX_HEAD_DIM];

void main() {
    uint h = gl_WorkGroupID.x;
    uint i = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationID.x;
    uint threads = gl_WorkGroupSize.x;
    uint qWidth = p.headCount * p.headDim, kvWidth = p.headCountKV * p.headDim;
    uint kvo = (h / (p.headCount / p.headCountKV)) * p.headDim;
    uint position = p.start + i, keyCount = p.start + p.n;
    uint first = p.window > 0u && position + 1u > p.window ? position + 1u - p.window : 0u;
    uint qb = p.qOffset + i * qWidth + h * p.headDim, gb = p.gOffset + i * qWidth + h * p.headDim;
    for (uint d = tid; d < p.headDim; d += threads) {
        query[d] = q[qb + d];
        grad[d] = dOut[gb + d];
    }
    barrier();
    uint row = p.pOffset + (h * p.n + i) * keyCount;
    // each thread visits the same positions j in every loop below: it reads back only its own writes
    float top = -1.0 / 0.0;
    for (uint j = first + tid; j <= position; j += threads) {
        float s = 0.0;
        uint kb = p.kOffset + j * kvWidth + kvo;
        for (uint d = 0u; d < p.headDim; d++) s += query[d] * keys[kb + d];
        s *= p.scale;
        probs[row + j] = s;
        top = max(top, s);
    }
    top = workgroupMax(top);
    float total = 0.0;
    for (uint j = first + tid; j <= position; j += threads) {
        float e = exp(probs[row + j] - top);
        probs[row + j] = e;
        total += e;
    }
    float inverse = 1.0 / workgroupSum(total);
    float dd = 0.0;
    for (uint j = first + tid; j <= position; j += threads) {
        float pj = probs[row + j] * inverse;
        probs[row + j] = pj;
        float dp = 0.0;
        uint vb = p.vOffset + j * kvWidth + kvo;
        for (uint d = 0u; d < p.headDim; d++) dp += grad[d] * values[vb + d];
        scoreGrads[row + j] = dp;
        dd += pj * dp;
    }
    dd = workgroupSum(dd);
    for (uint j = first + tid; j <= position; j += threads) {
        scoreGrads[row + j] = probs[row + j] * (scoreGrads[row + j] - dd) * p.scale;
    }
    memoryBarrierBuffer();
    barrier();
    for (uint d = tid; d < p.headDim; d += threads) {
        float acc = 0.0;
        for (uint j = first; j <= position; j++) acc += scoreGrads[row + j] * keys[p.kOffset + j * kvWidth + kvo + d];
        dq[p.dqOffset + i * qWidth + h * p.headDim + d] = acc;
    }
}
