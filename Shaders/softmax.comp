#version 450
// Per row: softmax (LOG=0) or log-softmax (LOG=1). One workgroup per row.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "reduce.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint width, xOffset, outOffset;
} p;

void main() {
    uint row = gl_WorkGroupID.x;
    uint tid = gl_LocalInvocationID.x;
    uint xb = p.xOffset + row * p.width;
    float largest = -1.0 / 0.0;
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) largest = max(largest, x[xb + j]);
    largest = workgroupMax(largest);
    float total = 0.0;
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) total += exp(x[xb + j] - largest);
    total = workgroupSum(total);
    uint ob = p.outOffset + row * p.width;
#if LOG
    float shift = largest + log(total);
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) outs[ob + j] = x[xb + j] - shift;
#else
    float inverse = 1.0 / total;
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) outs[ob + j] = exp(x[xb + j] - largest) * inverse;
#endif
}
