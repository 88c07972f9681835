#version 450
// Element-wise maps with one parameter: out = x * c (OP_SCALE) or c * tanh(x / c) (OP_SOFTCAP).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer In { float ins[]; };
layout(std430, binding = 1) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint count;
    uint inOffset, outOffset;
    float c;
    uint groupsX;
} p;

void main() {
    uint idx = gl_GlobalInvocationID.y * p.groupsX * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (idx >= p.count) return;
    float x = ins[p.inOffset + idx];
#if defined(OP_SOFTCAP)
    // tanh(z) as 1 - 2 / (e^(2z) + 1), with z bounded so the exponential stays finite
    float z = clamp(x / p.c, -15.0, 15.0);
    outs[p.outOffset + idx] = p.c * (1.0 - 2.0 / (exp(2.0 * z) + 1.0));
#else
    outs[p.outOffset + idx] = x * p.c;
#endif
}
