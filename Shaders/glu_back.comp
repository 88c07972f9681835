#version 450
// The gradients of SwiGLU, element-wise: dGate = dy · up · s (1 + gate (1 - s)) with
// s = sigmoid(gate), dUp = dy · gate · s. The outputs may be the inputs (read first).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Gate { float gate[]; };
layout(std430, binding = 1) readonly buffer Up { float up[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer DGate { float dgate[]; };
layout(std430, binding = 4) writeonly buffer DUp { float dup[]; };
layout(push_constant) uniform Parameters {
    uint count;
    uint gateOffset, upOffset, dyOffset, dGateOffset, dUpOffset;
    uint groupsX;
} p;

void main() {
    uint idx = gl_GlobalInvocationID.y * p.groupsX * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (idx >= p.count) return;
    float g = gate[p.gateOffset + idx], u = up[p.upOffset + idx], d = dy[p.dyOffset + idx];
    float s = 1.0 / (1.0 + exp(-g));
    dgate[p.dGateOffset + idx] = d * u * s * (1.0 + g * (1.0 - s));
    dup[p.dUpOffset + idx] = d * g * s;
}
