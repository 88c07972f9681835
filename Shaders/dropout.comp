#version 450
// Inverted dropout: element e (its index in the tensor) is kept unless the draw of (seed, e) is
// below the probability, and kept elements are scaled by 1 / (1 - probability). The draw is
// ThemisBackend's `dropoutDraw`: lowbias32 of the index and each half of the seed.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint count, xOffset, outOffset;
    uint seedLow, seedHigh;
    float probability, keep;
    uint groupsX;
} p;

uint mix32(uint v) {
    v ^= v >> 16;
    v *= 0x7FEB352Du;
    v ^= v >> 15;
    v *= 0x846CA68Bu;
    v ^= v >> 16;
    return v;
}

void main() {
    uint idx = gl_GlobalInvocationID.y * p.groupsX * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (idx >= p.count) return;
    uint h = mix32(mix32(idx ^ p.seedLow) ^ p.seedHigh);
    float draw = float(h >> 8) * (1.0 / 16777216.0);
    outs[p.outOffset + idx] = draw < p.probability ? 0.0 : x[p.xOffset + idx] * p.keep;
}
