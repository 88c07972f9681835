#version 450
// Attention backward, pass 2: one workgroup per (KV head, key position j of start + n):
// dk_j = Σ dS[h][i][j] q_i and dv_j = Σ P[h][i][j] dOut_i over the query heads h sharing the KV
// head and the query rows i (at positions start + i) that see position j, from pass 1's P and dS.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer G { float dOut[]; };
layout(std430, binding = 2) readonly buffer P { float probs[]; };
layout(std430, binding = 3) readonly buffer DS { float scoreGrads[]; };
layout(std430, binding = 4) writeonly buffer DK { float dk[]; };
layout(std430, binding = 5) writeonly buffer DV { float dv[]; };

layout(push_constant) uniform Parameters {
    uint headDim, headCount, headCountKV, n;
    uint qOffset, gOffset, pOffset, dkOffset, dvOffset;
    uint window, start;
} p;

void main() {
    uint g = gl_WorkGroupID.x;
    uint j = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationID.x;
    uint qWidth = p.headCount * p.headDim, kvWidth = p.headCountKV * p.headDim;
    uint group = p.headCount / p.headCountKV;
    uint keyCount = p.start + p.n;
    // positions of the rows that see j: max(j, start) ... last (none when last < that)
    uint last = p.window > 0u ? min(keyCount - 1u, j + p.window - 1u) : keyCount - 1u;
    uint from = max(j, p.start);
    for (uint d = tid; d < p.headDim; d += gl_WorkGroupSize.x) {
        float sk = 0.0, sv = 0.0;
        for (uint h = g * group; h < (g + 1u) * group; h++) {
            for (uint position = from; position <= last; position++) {
                uint i = position - p.start;
                uint at = p.pOffset + (h * p.n + i) * keyCount + j;
                uint x = i * qWidth + h * p.headDim + d;
                sk += scoreGrads[at] * q[p.qOffset + x];
                sv += probs[at] * dOut[p.gOffset + x];
            }
        }
        dk[p.dkOffset + j * kvWidth + g * p.headDim + d] = sk;
        dv[p.dvOffset + j * kvWidth + g * p.headDim + d] = sv;
    }
}
