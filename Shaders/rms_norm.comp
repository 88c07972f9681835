#version 450
// Per row: out = x / sqrt(mean(x²) + epsilon) * weight. One workgroup per row.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "reduce.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint width, xOffset, wOffset, outOffset;
    float epsilon;
} p;

void main() {
    uint row = gl_WorkGroupID.x;
    uint tid = gl_LocalInvocationID.x;
    uint xb = p.xOffset + row * p.width;
    float squares = 0.0;
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) squares += x[xb + j] * x[xb + j];
    float scale = inversesqrt(workgroupSum(squares) / float(p.width) + p.epsilon);
    uint ob = p.outOffset + row * p.width;
    // every thread has read its x values above: in-place use (out == x) is safe
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) outs[ob + j] = x[xb + j] * scale * w[p.wOffset + j];
}
