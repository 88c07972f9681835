#version 450
// Rounds activations to 8-bit blocks as llama.cpp's CPU path (and ours) does before a decode
// matmul on quantised weights: per 32 values, d = max|x| / 127 and x' = d * roundEven(x / d).
// Matching that rounding keeps this backend's decode logits on the CPU backend's and llama.cpp's.
// One invocation per block.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float outs[]; };
layout(push_constant) uniform Parameters {
    uint blocks, xOffset, outOffset;
} p;

void main() {
    uint b = gl_GlobalInvocationID.x;
    if (b >= p.blocks) return;
    uint xb = p.xOffset + 32u * b;
    float amax = 0.0;
    for (uint t = 0u; t < 32u; t++) amax = max(amax, abs(x[xb + t]));
    float d = amax / 127.0;
    float inverse = d == 0.0 ? 0.0 : 1.0 / d;
    for (uint t = 0u; t < 32u; t++) outs[p.outOffset + 32u * b + t] = d * roundEven(x[xb + t] * inverse);
}
