#version 450
// The weight gradient of an f32 weight: dw[j, c] (+)= Σ_i dy[i, j] · x[i, c]: one invocation per
// element of dw, summing over the tokens in order (a LoRA matrix is small).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer DW { float dw[]; };
layout(push_constant) uniform Parameters {
    uint n, m, k;
    uint dyOffset, xOffset, dwOffset;
    uint accumulate;
    uint groupsX;
} p;

void main() {
    uint idx = gl_GlobalInvocationID.y * p.groupsX * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (idx >= p.m * p.k) return;
    uint j = idx / p.k, c = idx % p.k;
    float sum = 0.0;
    for (uint i = 0u; i < p.n; i++) sum += dy[p.dyOffset + i * p.m + j] * x[p.xOffset + i * p.k + c];
    uint at = p.dwOffset + idx;
    dw[at] = p.accumulate != 0u ? dw[at] + sum : sum;
}
