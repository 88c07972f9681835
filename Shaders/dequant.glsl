// Weight rows in their GGUF storage type, read in place from a buffer of 32-bit words.
//
// Exactly one TYPE_* macro is defined per module (see manifest). `load8(rowBase, e, k, v)` gives
// elements e..e+7 of the row that starts at byte `rowBase` (e is a multiple of 8; elements at or
// past k read as 0, which only float types need). Blocks are packed back to back, so a block can
// start at any even byte: the readers below take any offset. `precise` keeps the arithmetic in
// ggml's order (no fused multiply-add), so dequantised rows equal the reference bit for bit.

layout(std430, binding = 0) readonly buffer WeightWords { uint wb[]; };

uint byte_at(uint off) { return (wb[off >> 2] >> ((off & 3u) * 8u)) & 0xFFu; }
// `off` is even.
uint u16_at(uint off) { return (wb[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu; }
uint u32_at(uint off) {
    uint shift = (off & 3u) * 8u;
    uint low = wb[off >> 2];
    return shift == 0u ? low : (low >> shift) | (wb[(off >> 2) + 1u] << (32u - shift));
}
float f16_at(uint off) { return unpackHalf2x16(u16_at(off)).x; }
// Eight consecutive bytes as two little-endian words.
uvec2 bytes8_at(uint off) { return uvec2(u32_at(off), u32_at(off + 4u)); }
uint byte_of(uvec2 w, uint t) { return (w[t >> 2] >> ((t & 3u) * 8u)) & 0xFFu; }

#if defined(TYPE_F32)
const uint QK = 1u;
void load8(uint rowBase, uint e, uint k, out float v[8]) {
    uint base = (rowBase >> 2) + e;
    for (uint t = 0u; t < 8u; t++) v[t] = e + t < k ? uintBitsToFloat(wb[base + t]) : 0.0;
}
#elif defined(TYPE_F16) || defined(TYPE_BF16)
const uint QK = 1u;
void load8(uint rowBase, uint e, uint k, out float v[8]) {
    for (uint j = 0u; j < 4u; j++) {
        uint w = e + 2u * j < k ? u32_at(rowBase + 2u * e + 4u * j) : 0u;
#if defined(TYPE_F16)
        vec2 pair = unpackHalf2x16(w);
#else
        vec2 pair = vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xFFFF0000u));
#endif
        v[2u * j] = pair.x;
        v[2u * j + 1u] = e + 2u * j + 1u < k ? pair.y : 0.0;
    }
}
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1)
const uint QK = 32u;
void load8(uint rowBase, uint e, uint k, out float v[8]) {
#if defined(TYPE_Q4_0)
    uint bo = rowBase + (e >> 5) * 18u;
    uint qs = bo + 2u;
#else
    uint bo = rowBase + (e >> 5) * 20u;
    uint qs = bo + 4u;
    float m = f16_at(bo + 2u);
#endif
    float d = f16_at(bo);
    uint j = e & 31u;
    uvec2 q = bytes8_at(qs + (j & 15u));
    uint shift = j < 16u ? 0u : 4u;
    for (uint t = 0u; t < 8u; t++) {
        uint code = (byte_of(q, t) >> shift) & 0xFu;
#if defined(TYPE_Q4_0)
        precise float value = d * float(int(code) - 8);
#else
        precise float value = d * float(code) + m;
#endif
        v[t] = value;
    }
}
#elif defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
const uint QK = 32u;
void load8(uint rowBase, uint e, uint k, out float v[8]) {
#if defined(TYPE_Q5_0)
    uint bo = rowBase + (e >> 5) * 22u;
    uint hi = bo + 2u;
#else
    uint bo = rowBase + (e >> 5) * 24u;
    uint hi = bo + 4u;
    float m = f16_at(bo + 2u);
#endif
    float d = f16_at(bo);
    uint qh = u32_at(hi);
    uint j = e & 31u;
    uvec2 q = bytes8_at(hi + 4u + (j & 15u));
    uint shift = j < 16u ? 0u : 4u;
    for (uint t = 0u; t < 8u; t++) {
        uint code = ((byte_of(q, t) >> shift) & 0xFu) | (((qh >> (j + t)) & 1u) << 4);
#if defined(TYPE_Q5_0)
        precise float value = d * float(int(code) - 16);
#else
        precise float value = d * float(code) + m;
#endif
        v[t] = value;
    }
}
#elif defined(TYPE_Q8_0)
const uint QK = 32u;
void load8(uint rowBase, uint e, uint k, out float v[8]) {
    uint bo = rowBase + (e >> 5) * 34u;
    float d = f16_at(bo);
    uvec2 q = bytes8_at(bo + 2u + (e & 31u));
    for (uint t = 0u; t < 8u; t++) {
        precise float value = d * float((int(byte_of(q, t)) << 24) >> 24);
        v[t] = value;
    }
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
const uint QK = 256u;
// Scale and minimum of sub-block `j` (0..7) from the 12 packed bytes at `sc`.
uvec2 scale_min_k4(uint sc, uint j) {
    if (j < 4u) return uvec2(byte_at(sc + j) & 63u, byte_at(sc + j + 4u) & 63u);
    uint packed = byte_at(sc + j + 4u);
    return uvec2((packed & 0xFu) | ((byte_at(sc + j - 4u) >> 6) << 4),
                 (packed >> 4) | ((byte_at(sc + j) >> 6) << 4));
}
void load8(uint rowBase, uint e, uint k, out float v[8]) {
#if defined(TYPE_Q4_K)
    uint bo = rowBase + (e >> 8) * 144u;
    uint qs = bo + 16u;
#else
    uint bo = rowBase + (e >> 8) * 176u;
    uint qs = bo + 48u;
#endif
    uint s = e & 255u;
    uint chunk = s >> 6;            // 64 elements share 32 bytes of codes
    uint high = (s >> 5) & 1u;      // the upper 32 take the high nibbles
    uint l = s & 31u;
    uvec2 sm = scale_min_k4(bo + 4u, 2u * chunk + high);
    float d = f16_at(bo) * float(sm.x);
    float m = f16_at(bo + 2u) * float(sm.y);
    uvec2 q = bytes8_at(qs + 32u * chunk + l);
#if defined(TYPE_Q5_K)
    uvec2 h = bytes8_at(bo + 16u + l);
    uint hshift = 2u * chunk + high;
#endif
    for (uint t = 0u; t < 8u; t++) {
        uint code = (byte_of(q, t) >> (4u * high)) & 0xFu;
#if defined(TYPE_Q5_K)
        code |= ((byte_of(h, t) >> hshift) & 1u) << 4;
#endif
        precise float value = d * float(code) - m;
        v[t] = value;
    }
}
#elif defined(TYPE_Q6_K)
const uint QK = 256u;
void load8(uint rowBase, uint e, uint k, out float v[8]) {
    uint bo = rowBase + (e >> 8) * 210u;
    uint s = e & 255u;
    uint half_ = s >> 7;
    uint quarter = (s >> 5) & 3u;   // which of the four 32-element runs of the half
    uint l = s & 31u;
    uvec2 low = bytes8_at(bo + 64u * half_ + 32u * (quarter & 1u) + l);
    uvec2 high = bytes8_at(bo + 128u + 32u * half_ + l);
    uint lowShift = 4u * (quarter >> 1);
    uint highShift = 2u * quarter;
    int sc = (int(byte_at(bo + 192u + (s >> 4))) << 24) >> 24;
    float scale = f16_at(bo + 208u) * float(sc);
    for (uint t = 0u; t < 8u; t++) {
        uint code = ((byte_of(low, t) >> lowShift) & 0xFu) | (((byte_of(high, t) >> highShift) & 3u) << 4);
        precise float value = scale * float(int(code) - 32);
        v[t] = value;
    }
}
#else
#error "no TYPE_* defined"
#endif
