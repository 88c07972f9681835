#version 450
// Gated activations, element-wise: out = act(gate) * up, with act SiLU (ACT_SILU) or GELU's
// tanh approximation (ACT_GELU).
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
#if defined(ACT_GELU)
    // tanh(z) as 1 - 2 / (e^(2z) + 1), with z bounded so the exponential stays finite
    float z = clamp(0.7978845608 * (g + 0.044715 * g * g * g), -15.0, 15.0);
    float act = 0.5 * g * (2.0 - 2.0 / (exp(2.0 * z) + 1.0));
#else
    float act = g / (1.0 + exp(-g));
#endif
    outs[p.outOffset + idx] = act * up[p.upOffset + idx];
}
