#version 450
// The input gradient of RMSNorm per row: dx = r (g - x r² mean(g x)) with g = dy · weight and
// r = 1 / sqrt(mean(x²) + epsilon). One workgroup per row; dx may be dy (each thread writes only
// the elements it reads).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "reduce.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer DX { float dxs[]; };
layout(push_constant) uniform Parameters {
    uint width, xOffset, wOffset, dyOffset, outOffset;
    float epsilon;
} p;

void main() {
    uint row = gl_WorkGroupID.x;
    uint tid = gl_LocalInvocationID.x;
    uint xb = p.xOffset + row * p.width, gb = p.dyOffset + row * p.width;
    float squares = 0.0, dot = 0.0;
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) {
        float v = x[xb + j];
        squares += v * v;
        dot += dy[gb + j] * w[p.wOffset + j] * v;
    }
    float r = inversesqrt(workgroupSum(squares) / float(p.width) + p.epsilon);
    float correction = r * r * workgroupSum(dot) / float(p.width);
    uint ob = p.outOffset + row * p.width;
    for (uint j = tid; j < p.width; j += gl_WorkGroupSize.x) {
        dxs[ob + j] = r * (dy[gb + j] * w[p.wOffset + j] - x[xb + j] * correction);
    }
}
