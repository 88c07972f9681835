#version 450
// out = a + b, where b has a's rows or is one row broadcast over them (a bias).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint count, width, broadcast;
    uint aOffset, bOffset, outOffset;
    uint groupsX;
} p;

void main() {
    uint idx = gl_GlobalInvocationID.y * p.groupsX * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (idx >= p.count) return;
    uint bi = p.broadcast != 0u ? idx % p.width : idx;
    outs[p.outOffset + idx] = a[p.aOffset + idx] + b[p.bOffset + bi];
}
