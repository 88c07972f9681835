#version 450
// Weighted cross-entropy per row: losses[i] = w_i (logsumexp(row) - row[t_i]), and the gradient
// factor · w_i (softmax(row) - onehot(t_i)), which may overwrite the logits (each thread writes
// only the elements it reads last). One workgroup per row; targets and weights come from the
// staging arena (a uint and a float per row).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "reduce.glsl"
layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) readonly buffer Arena { uint arena[]; };
layout(std430, binding = 2) writeonly buffer Losses { float losses[]; };
layout(std430, binding = 3) writeonly buffer Gradient { float gradient[]; };
layout(push_constant) uniform Parameters {
    uint vocab, logitsOffset, arenaOffset, lossOffset, gradientOffset;
    float factor;
} p;

void main() {
    uint row = gl_WorkGroupID.x;
    uint tid = gl_LocalInvocationID.x;
    uint target = arena[p.arenaOffset + 2u * row];
    float weight = uintBitsToFloat(arena[p.arenaOffset + 2u * row + 1u]);
    uint xb = p.logitsOffset + row * p.vocab, gb = p.gradientOffset + row * p.vocab;
    if (weight == 0.0) {
        if (tid == 0u) losses[p.lossOffset + row] = 0.0;
        for (uint j = tid; j < p.vocab; j += gl_WorkGroupSize.x) gradient[gb + j] = 0.0;
        return;
    }
    float top = -1.0 / 0.0;
    for (uint j = tid; j < p.vocab; j += gl_WorkGroupSize.x) top = max(top, logits[xb + j]);
    top = workgroupMax(top);
    float total = 0.0;
    for (uint j = tid; j < p.vocab; j += gl_WorkGroupSize.x) total += exp(logits[xb + j] - top);
    total = workgroupSum(total);
    float targetLogit = logits[xb + target];
    barrier();  // every thread has read the target's logit before anyone overwrites it
    if (tid == 0u) losses[p.lossOffset + row] = weight * (top + log(total) - targetLogit);
    float scale = p.factor * weight / total;
    for (uint j = tid; j < p.vocab; j += gl_WorkGroupSize.x) {
        float g = exp(logits[xb + j] - top) * scale;
        gradient[gb + j] = j == target ? g - p.factor * weight : g;
    }
}
