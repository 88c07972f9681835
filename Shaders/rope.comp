#version 450
// Rotary position embedding in place (or its transpose, for the backward pass): one invocation
// per (row, head, rotated pair).
// The host supplies cos and sin of every (row, pair) angle, computed in double: positions reach
// tens of thousands of radians, where a float angle would lose the digits the sine depends on.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Values { float v[]; };
layout(std430, binding = 1) readonly buffer Angles { vec2 cosSin[]; };
layout(push_constant) uniform Parameters {
    uint rows, width, headDim, ropeDim;
    uint offset, anglesOffset;   // floats, vec2s
    uint halfSplit;              // 0: pairs (2j, 2j+1); 1: pairs (j, j + ropeDim/2)
    uint inverse;                // 1: turn by the opposite angles (RoPE's backward)
} p;

void main() {
    uint half_ = p.ropeDim / 2u;
    uint heads = p.width / p.headDim;
    uint idx = gl_GlobalInvocationID.x;
    if (idx >= p.rows * heads * half_) return;
    uint j = idx % half_;
    uint head = (idx / half_) % heads;
    uint row = idx / (half_ * heads);
    vec2 cs = cosSin[p.anglesOffset + row * half_ + j];
    if (p.inverse != 0u) cs.y = -cs.y;
    uint base = p.offset + row * p.width + head * p.headDim;
    uint first = p.halfSplit != 0u ? j : 2u * j;
    uint second = p.halfSplit != 0u ? j + half_ : 2u * j + 1u;
    float a = v[base + first];
    float b = v[base + second];
    v[base + first] = a * cs.x - b * cs.y;
    v[base + second] = a * cs.y + b * cs.x;
}
