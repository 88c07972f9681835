#version 450
// out = silu(gate) * up, element-wise.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Gate { float gate[]; };
layout(std430, binding = 1) readonly buffer Up { float up[]; };
layout(std430, binding = 2) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint count;
    uint gateOffset, upOffset, outOffset;
    uint groupsX;
} p;

void main() {
    uint idx = gl_GlobalInvocationID.y * p.groupsX * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (idx >= p.count) return;
    float g = gate[p.gateOffset + idx];
    outs[p.outOffset + idx] = g / (1.0 + exp(-g)) * up[p.upOffset + idx];
}
