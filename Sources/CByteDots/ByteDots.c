// Byte dots of the quantised block formats (see include/CByteDots.h). Each block's weights are
// brought to unsigned bytes (nibbles, five- or six-bit values, or |q8| with the sign moved onto
// x), multiplied with x's signed bytes and summed into 8 int32 lanes by one multiply-add chain;
// what the offsets (-8, -16, -32) and the mins add comes through x's block sums.
#include "CByteDots.h"

size_t themis_byte_gemm_panel_bytes(int k) {
    // bytes: 16 per element; scales and offsets: 2 · 16 floats per 16-element sub-block at most
    return (size_t)k * 16 + (size_t)(k / 16) * 16 * 4 * 2 + 64;
}

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>

// The 8-bit dot into 32-bit lanes (vpdpbusd), with AVX-512 VNNI or AVX-VNNI.
#if defined(__AVX512VNNI__) && defined(__AVX512VL__) || defined(__AVXVNNI__)
#define HAS_VNNI 1
#else
#define HAS_VNNI 0
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define ISA "avx512-vnni"
// u8 x s8, four adjacent products summed into each int32 lane
static inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
#elif defined(__AVXVNNI__)
#define ISA "avx-vnni"
static inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s); }
#else
#define ISA "avx2"
// pairs into int16 (|u| <= 128 and |s| <= 127 here, so no saturation), then pairs into int32
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
#elif defined(__AVXVNNI__)
static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
#endif

static inline float half(const uint8_t *p) { return _cvtsh_ss((uint16_t)(p[0] | (p[1] << 8))); }

static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

// 16 bytes of nibbles as 32 bytes: the low nibbles (elements 0-15), then the high ones.
static inline __m256i nibbles(const uint8_t *q) {
    __m128i raw = _mm_loadu_si128((const __m128i *)q);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Adds 16 to byte i where bit i of `bits` is set.
static inline __m256i fifth_bits(__m256i v, uint32_t bits) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    return _mm256_mask_add_epi8(v, (__mmask32)bits, v, _mm256_set1_epi8(16));
#else
    // byte i gets byte i/8 of `bits`, keeps its own bit, and compares equal to that bit
    const __m256i spread = _mm256_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                           1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
    return _mm256_or_si256(v, _mm256_and_si256(set, _mm256_set1_epi8(16)));
#endif
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One block: its integer dot with x (8 int32 lanes), the factor on them (the weight's scale),
// and the factor on x's block sum (offsets and mins).
typedef struct {
    __m256i dot;
    float d, sx;
} block_dot;

static inline __attribute__((always_inline)) block_dot dot_block(int format, const uint8_t *b, __m256i x) {
    block_dot r;
    switch (format) {
    case THEMIS_BYTE_Q4_0:  // f16 d, 16 nibble bytes; (q - 8)·d
        r.d = half(b);
        r.dot = dot_u8s8(nibbles(b + 2), x);
        r.sx = -8 * r.d;
        break;
    case THEMIS_BYTE_Q4_1:  // f16 d, f16 m, 16 nibble bytes; q·d + m
        r.d = half(b);
        r.dot = dot_u8s8(nibbles(b + 4), x);
        r.sx = half(b + 2);
        break;
    case THEMIS_BYTE_Q5_0:  // f16 d, 32 fifth bits, 16 nibble bytes; (q - 16)·d
        r.d = half(b);
        r.dot = dot_u8s8(fifth_bits(nibbles(b + 6), load32(b + 2)), x);
        r.sx = -16 * r.d;
        break;
    case THEMIS_BYTE_Q5_1:  // f16 d, f16 m, 32 fifth bits, 16 nibble bytes; q·d + m
        r.d = half(b);
        r.dot = dot_u8s8(fifth_bits(nibbles(b + 8), load32(b + 4)), x);
        r.sx = half(b + 2);
        break;
    default: {  // Q8_0: f16 d, 32 signed bytes; q·d, as |q| times x with q's sign
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 2));
        r.d = half(b);
        r.dot = dot_u8s8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
        r.sx = 0;
        break;
    }
    }
    return r;
}

static inline __attribute__((always_inline)) void rows(int format, size_t block_bytes, const void *w, size_t row_bytes,
                                                        int k, const int8_t *xq, const float *xd, const float *xs,
                                                        float *y, int row_start, int row_end) {
    const int blocks = k / 32;
    for (int r = row_start; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        float s0 = 0, s1 = 0;
        int b = 0;
        // two chains, so one block's conversion and multiply-add need not wait for the last's
        for (; b + 1 < blocks; b += 2) {
            block_dot p = dot_block(format, row + b * block_bytes, _mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
            block_dot q = dot_block(format, row + (b + 1) * block_bytes,
                                    _mm256_loadu_si256((const __m256i *)(xq + 32 * (b + 1))));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p.dot), _mm256_set1_ps(p.d * xd[b]), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q.dot), _mm256_set1_ps(q.d * xd[b + 1]), acc1);
            s0 += p.sx * xs[b];
            s1 += q.sx * xs[b + 1];
        }
        if (b < blocks) {
            block_dot p = dot_block(format, row + b * block_bytes, _mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p.dot), _mm256_set1_ps(p.d * xd[b]), acc0);
            s0 += p.sx * xs[b];
        }
        y[r] = hsum(_mm256_add_ps(acc0, acc1)) + s0 + s1;
    }
}

#define ROWS(name, format, bytes)                                                                                   \
    static void name(const void *w, size_t row_bytes, int k, const int8_t *xq, const float *xd, const float *xs,   \
                     const int16_t *xsum16, float *y, int row_start, int row_end) {                                \
        (void)xsum16;                                                                                              \
        rows(format, bytes, w, row_bytes, k, xq, xd, xs, y, row_start, row_end);                                   \
    }
ROWS(rows_q4_0, THEMIS_BYTE_Q4_0, 18)
ROWS(rows_q4_1, THEMIS_BYTE_Q4_1, 20)
ROWS(rows_q5_0, THEMIS_BYTE_Q5_0, 22)
ROWS(rows_q5_1, THEMIS_BYTE_Q5_1, 24)
ROWS(rows_q8_0, THEMIS_BYTE_Q8_0, 34)

// --- K-quants: 256-element blocks, x with one scale per block ---

// The sum of u·s over each group of 4 bytes, times `scale` (|u| <= 63, |scale| <= 128; the
// scales as scale_lanes lays them out).
static inline __m256i scaled_dot(__m256i u, __m256i s, __m256i scale) {
#if HAS_VNNI
    return _mm256_mullo_epi32(dot_u8s8(u, s), scale);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale);
#endif
}

// Scales for scaled_dot: the first half of the lanes get `lo`, the rest `hi` (32-bit lanes with
// VNNI, whose dot sums into them; else the 16-bit pair lanes).
static inline __m256i scale_lanes(int lo, int hi) {
#if HAS_VNNI
    return _mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi);
#else
    return _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi);
#endif
}

// Q4_K and Q5_K's eight 6-bit scales and eight mins from their 12 bytes (sub-blocks 0-3 keep six
// low bits; 4-7 take a nibble of bytes 8-11 and the two high bits of bytes 0-7).
static inline void scales_mins_k(const uint8_t *q, uint8_t scales[8], uint8_t mins[8]) {
    uint32_t w0 = load32(q), w1 = load32(q + 4), w2 = load32(q + 8);
    uint32_t s[2] = {w0 & 0x3F3F3F3Fu, (w2 & 0x0F0F0F0Fu) | (((w0 >> 6) & 0x03030303u) << 4)};
    uint32_t m[2] = {w1 & 0x3F3F3F3Fu, ((w2 >> 4) & 0x0F0F0F0Fu) | (((w1 >> 6) & 0x03030303u) << 4)};
    __builtin_memcpy(scales, s, 8);
    __builtin_memcpy(mins, m, 8);
}

// Bit `bit` of every byte of `v`, moved to bit 4 (the fifth bit of a Q5_K value).
static inline __m256i bit_to_16(__m256i v, int bit) {
    __m256i moved = bit <= 4 ? _mm256_slli_epi16(v, 4 - bit) : _mm256_srli_epi16(v, bit - 4);
    return _mm256_and_si256(moved, _mm256_set1_epi8(16));
}

// Sub-blocks 2j and 2j + 1 of a Q4_K or Q5_K block as unsigned bytes (Q5_K's fifth bits added).
static inline __attribute__((always_inline)) void k_pair(int format, const uint8_t *blk, int j, __m256i *lo,
                                                          __m256i *hi) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const uint8_t *qs = blk + (format == THEMIS_BYTE_Q5_K ? 48 : 16);
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
    *lo = _mm256_and_si256(q, low4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
    if (format == THEMIS_BYTE_Q5_K) {
        __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 16));
        *lo = _mm256_or_si256(*lo, bit_to_16(qh, 2 * j));
        *hi = _mm256_or_si256(*hi, bit_to_16(qh, 2 * j + 1));
    }
}

// Half n of a Q6_K block (128 low nibbles, then 64 bytes of 2-bit highs) as four groups of 32
// unsigned six-bit bytes, elements 128n + 32g ..< 128n + 32g + 32.
static inline __attribute__((always_inline)) void q6_quarters(const uint8_t *blk, int n, __m256i q[4]) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256i a = _mm256_loadu_si256((const __m256i *)(blk + 64 * n));
    __m256i c = _mm256_loadu_si256((const __m256i *)(blk + 64 * n + 32));
    __m256i h = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * n));
    q[0] = _mm256_or_si256(_mm256_and_si256(a, low4), _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x03)), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(c, low4), _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x0C)), 2));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), _mm256_and_si256(h, _mm256_set1_epi8(0x30)));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low4),
                           _mm256_srli_epi16(_mm256_and_si256(h, _mm256_set1_epi8((char)0xC0)), 2));
}

static inline __attribute__((always_inline)) void rows_k(int format, size_t block_bytes, const void *w,
                                                          size_t row_bytes, int k, const int8_t *xq, const float *xd,
                                                          const float *xs, const int16_t *xsum16, float *y,
                                                          int row_start, int row_end) {
    const int blocks = k / 256;
    for (int r = row_start; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        __m256 acc = _mm256_setzero_ps(), accMin = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = row + b * block_bytes;
            const int8_t *x = xq + 256 * b;
            __m256i sum = _mm256_setzero_si256();
            float d;
            if (format == THEMIS_BYTE_Q6_K) {
                // 128 low nibbles, 64 bytes of 2-bit highs, 16 signed scales, f16 d; (q - 32)·s·d
                const int8_t *sc = (const int8_t *)(blk + 192);
                for (int n = 0; n < 2; n++) {
                    __m256i q[4];
                    q6_quarters(blk, n, q);
                    for (int g = 0; g < 4; g++) {
                        int lo = sc[8 * n + 2 * g], hi = sc[8 * n + 2 * g + 1];
                        __m256i s = scale_lanes(lo, hi);
                        sum = _mm256_add_epi32(sum, scaled_dot(q[g], _mm256_loadu_si256((const __m256i *)(x + 128 * n + 32 * g)), s));
                    }
                }
                // the -32: 32·Σ_i s_i·(the sum of x's 16 bytes of sub-block i)
                __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
                __m256i offset = _mm256_madd_epi16(s16, _mm256_loadu_si256((const __m256i *)(xsum16 + 16 * b)));
                sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(offset, 5));
                d = half(blk + 208);
            } else {
                // f16 d, f16 dmin, 12 bytes of scales/mins, [Q5_K: 32 bytes of fifth bits,] 128
                // nibble bytes; s·q·d - m·dmin per 32-element sub-block
                uint8_t scales[8], mins[8];
                scales_mins_k(blk + 4, scales, mins);
                for (int j = 0; j < 4; j++) {
                    __m256i lo, hi;
                    k_pair(format, blk, j, &lo, &hi);
                    __m256i s1 = scale_lanes(scales[2 * j], scales[2 * j]);
                    __m256i s2 = scale_lanes(scales[2 * j + 1], scales[2 * j + 1]);
                    sum = _mm256_add_epi32(sum, scaled_dot(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * j)), s1));
                    sum = _mm256_add_epi32(sum, scaled_dot(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * j + 32)), s2));
                }
                d = half(blk);
                // the mins through x's 32-element sums (xs: already times x's scale)
                __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mins)));
                accMin = _mm256_fmadd_ps(_mm256_mul_ps(m, _mm256_loadu_ps(xs + 8 * b)), _mm256_set1_ps(half(blk + 2)), accMin);
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * xd[8 * b]), acc);
        }
        y[r] = hsum(_mm256_sub_ps(acc, accMin));
    }
}

#define ROWS_K(name, format, bytes)                                                                                 \
    static void name(const void *w, size_t row_bytes, int k, const int8_t *xq, const float *xd, const float *xs,   \
                     const int16_t *xsum16, float *y, int row_start, int row_end) {                                \
        rows_k(format, bytes, w, row_bytes, k, xq, xd, xs, xsum16, y, row_start, row_end);                         \
    }
ROWS_K(rows_q4_k, THEMIS_BYTE_Q4_K, 144)
ROWS_K(rows_q5_k, THEMIS_BYTE_Q5_K, 176)
ROWS_K(rows_q6_k, THEMIS_BYTE_Q6_K, 210)

// --- GEMM (prefill) ---
//
// A panel of 16 weight rows is unpacked into unsigned bytes laid out for vpdpbusd: for each
// 4 elements of k, the 16 rows' 4 bytes side by side (two vectors of 8 rows), with a scale and
// an offset coefficient per row and sub-block (S elements: 16 for Q6_K, 32 otherwise). The
// kernel broadcasts 4 bytes of an activation row and multiplies them into both vectors;
// after each sub-block the integer sums become floats: acc += isum·(wd·dx) + wo·xs, in that
// order for every output whatever the tile, so a row's numbers do not depend on n.
// Without VNNI, vpmaddubsw's 16-bit pair sums add up over `group` quads in 16-bit lanes (as many
// as the format's largest value allows without saturating: 8 for 4-bit values, 4 for 5-bit, 2
// for 6-bit) before one vpmaddwd widens them; Q8_0 has no GEMM there (its values would saturate).

// Activation rows per tile: the accumulators of 6 fit AVX-512's 32 vector registers, of 3 AVX2's 16.
#if defined(__AVX512VL__)
#define TILE 6
#else
#define TILE 3
#endif

// Unpacks block `b` of a weight row into `u` (its elements as unsigned bytes) and the scale and
// offset coefficient of each of its sub-blocks of `sub` elements.
static inline __attribute__((always_inline)) void unpack_block(int format, const uint8_t *blk, uint8_t *u,
                                                                float *wd, float *wo) {
    switch (format) {
    case THEMIS_BYTE_Q4_0:
        _mm256_storeu_si256((__m256i *)u, nibbles(blk + 2));
        wd[0] = half(blk), wo[0] = -8 * wd[0];
        break;
    case THEMIS_BYTE_Q4_1:
        _mm256_storeu_si256((__m256i *)u, nibbles(blk + 4));
        wd[0] = half(blk), wo[0] = half(blk + 2);
        break;
    case THEMIS_BYTE_Q5_0:
        _mm256_storeu_si256((__m256i *)u, fifth_bits(nibbles(blk + 6), load32(blk + 2)));
        wd[0] = half(blk), wo[0] = -16 * wd[0];
        break;
    case THEMIS_BYTE_Q5_1:
        _mm256_storeu_si256((__m256i *)u, fifth_bits(nibbles(blk + 8), load32(blk + 4)));
        wd[0] = half(blk), wo[0] = half(blk + 2);
        break;
    case THEMIS_BYTE_Q8_0:  // q + 128 as unsigned, the 128 taken back through x's sums
        _mm256_storeu_si256((__m256i *)u, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)),
                                                            _mm256_set1_epi8((char)0x80)));
        wd[0] = half(blk), wo[0] = -128 * wd[0];
        break;
    case THEMIS_BYTE_Q4_K:
    case THEMIS_BYTE_Q5_K: {
        uint8_t scales[8], mins[8];
        scales_mins_k(blk + 4, scales, mins);
        const float d = half(blk), dmin = half(blk + 2);
        for (int j = 0; j < 4; j++) {
            __m256i lo, hi;
            k_pair(format, blk, j, &lo, &hi);
            _mm256_storeu_si256((__m256i *)(u + 64 * j), lo);
            _mm256_storeu_si256((__m256i *)(u + 64 * j + 32), hi);
        }
        for (int j = 0; j < 8; j++) wd[j] = d * scales[j], wo[j] = -dmin * mins[j];
        break;
    }
    default: {  // Q6_K, sub-blocks of 16
        const int8_t *sc = (const int8_t *)(blk + 192);
        const float d = half(blk + 208);
        for (int n = 0; n < 2; n++) {
            __m256i q[4];
            q6_quarters(blk, n, q);
            for (int g = 0; g < 4; g++) _mm256_storeu_si256((__m256i *)(u + 128 * n + 32 * g), q[g]);
        }
        for (int j = 0; j < 16; j++) wd[j] = d * sc[j], wo[j] = -32 * wd[j];
        break;
    }
    }
}

// One tile: R activation rows (x0 ... ) times the panel's 16 rows, written to y.
static inline __attribute__((always_inline)) void gemm_tile(const int R, const int sub, const int group, int k,
                                                             const uint8_t *panel, const float *wd, const float *wo,
                                                             themis_byte_rows_in x, int i0, float *y, size_t ldy,
                                                             int cols) {
    __m256 acc[6][2];
    const int8_t *xq[6];
    const float *xd[6];
    const int16_t *xs16[6];
    for (int r = 0; r < R; r++) {
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        size_t o = (size_t)(i0 + r) * x.stride;
        xq[r] = (const int8_t *)((const char *)x.q + o);
        xd[r] = (const float *)((const char *)x.d + o);
        xs16[r] = (const int16_t *)((const char *)x.sums16 + o);
    }
    const int subs = k / sub;
    for (int b = 0; b < subs; b++) {
        __m256i isum[6][2];
        for (int r = 0; r < R; r++) isum[r][0] = isum[r][1] = _mm256_setzero_si256();
        const uint8_t *p = panel + (size_t)b * sub * 16;
#if HAS_VNNI
        (void)group;
        for (int t = 0; t < sub / 4; t++) {
            __m256i w0 = _mm256_load_si256((const __m256i *)(p + 64 * t));
            __m256i w1 = _mm256_load_si256((const __m256i *)(p + 64 * t + 32));
            for (int r = 0; r < R; r++) {
                int32_t quad;
                __builtin_memcpy(&quad, xq[r] + b * sub + 4 * t, 4);
                __m256i xb = _mm256_set1_epi32(quad);
                isum[r][0] = dpbusd(isum[r][0], w0, xb);
                isum[r][1] = dpbusd(isum[r][1], w1, xb);
            }
        }
#else
        for (int g = 0; g < sub / 4; g += group) {
            __m256i pairs[6][2];
            for (int r = 0; r < R; r++) pairs[r][0] = pairs[r][1] = _mm256_setzero_si256();
            for (int t = g; t < g + group; t++) {
                __m256i w0 = _mm256_load_si256((const __m256i *)(p + 64 * t));
                __m256i w1 = _mm256_load_si256((const __m256i *)(p + 64 * t + 32));
                for (int r = 0; r < R; r++) {
                    int32_t quad;
                    __builtin_memcpy(&quad, xq[r] + b * sub + 4 * t, 4);
                    __m256i xb = _mm256_set1_epi32(quad);
                    pairs[r][0] = _mm256_add_epi16(pairs[r][0], _mm256_maddubs_epi16(w0, xb));
                    pairs[r][1] = _mm256_add_epi16(pairs[r][1], _mm256_maddubs_epi16(w1, xb));
                }
            }
            const __m256i ones = _mm256_set1_epi16(1);
            for (int r = 0; r < R; r++) {
                isum[r][0] = _mm256_add_epi32(isum[r][0], _mm256_madd_epi16(pairs[r][0], ones));
                isum[r][1] = _mm256_add_epi32(isum[r][1], _mm256_madd_epi16(pairs[r][1], ones));
            }
        }
#endif
        __m256 d0 = _mm256_load_ps(wd + 16 * b), d1 = _mm256_load_ps(wd + 16 * b + 8);
        __m256 o0 = _mm256_load_ps(wo + 16 * b), o1 = _mm256_load_ps(wo + 16 * b + 8);
        for (int r = 0; r < R; r++) {
            // x's scale of this sub-block, and its byte sum times that scale
            float dx = xd[r][b * sub / 32];
            int sum = sub == 16 ? xs16[r][b] : xs16[r][2 * b] + xs16[r][2 * b + 1];
            __m256 dxb = _mm256_set1_ps(dx), xsb = _mm256_set1_ps(dx * (float)sum);
            acc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][0]), _mm256_mul_ps(d0, dxb), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][1]), _mm256_mul_ps(d1, dxb), acc[r][1]);
            acc[r][0] = _mm256_fmadd_ps(o0, xsb, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(o1, xsb, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        float *yr = y + (size_t)(i0 + r) * ldy;
        if (cols == 16) {
            _mm256_storeu_ps(yr, acc[r][0]);
            _mm256_storeu_ps(yr + 8, acc[r][1]);
        } else {
            float tmp[16];
            _mm256_storeu_ps(tmp, acc[r][0]);
            _mm256_storeu_ps(tmp + 8, acc[r][1]);
            for (int c = 0; c < cols; c++) yr[c] = tmp[c];
        }
    }
}

static inline __attribute__((always_inline)) void gemm(int format, size_t block_bytes, int block, int sub,
                                                        int group, const void *w, size_t row_bytes, int k, int m, int j0,
                                                        themis_byte_rows_in x, int n, float *y, size_t ldy,
                                                        void *panel_memory) {
    uint8_t *panel = (uint8_t *)panel_memory;
    float *wd = (float *)(panel + (size_t)k * 16), *wo = wd + (k / sub) * 16;
    const int cols = m - j0 < 16 ? m - j0 : 16;
    uint8_t u[256];
    float bd[16], bo[16];
    for (int c = 0; c < 16; c++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)(c < cols ? j0 + c : j0) * row_bytes;
        for (int b = 0; b < k / block; b++) {
            unpack_block(format, row + b * block_bytes, u, bd, bo);
            for (int e = 0; e < block; e += 4) {
                uint32_t quad = 0;
                if (c < cols) __builtin_memcpy(&quad, u + e, 4);  // rows past m: zeros
                __builtin_memcpy(panel + ((size_t)(b * block + e) / 4 * 16 + c) * 4, &quad, 4);
            }
            for (int j = 0; j < block / sub; j++) {
                int s = b * (block / sub) + j;
                wd[16 * s + c] = c < cols ? bd[j] : 0;
                wo[16 * s + c] = c < cols ? bo[j] : 0;
            }
        }
    }
    y += j0;
    int i = 0;
    for (; i + TILE <= n; i += TILE) gemm_tile(TILE, sub, group, k, panel, wd, wo, x, i, y, ldy, cols);
    switch (n - i) {
    case 5: gemm_tile(5, sub, group, k, panel, wd, wo, x, i, y, ldy, cols); break;
    case 4: gemm_tile(4, sub, group, k, panel, wd, wo, x, i, y, ldy, cols); break;
    case 3: gemm_tile(3, sub, group, k, panel, wd, wo, x, i, y, ldy, cols); break;
    case 2: gemm_tile(2, sub, group, k, panel, wd, wo, x, i, y, ldy, cols); break;
    case 1: gemm_tile(1, sub, group, k, panel, wd, wo, x, i, y, ldy, cols); break;
    default: break;
    }
}

#define GEMM(name, format, bytes, block, sub, group)                                                               \
    static void name(const void *w, size_t row_bytes, int k, int m, int j0, themis_byte_rows_in x, int n, float *y, \
                     size_t ldy, void *panel) {                                                                    \
        gemm(format, bytes, block, sub, group, w, row_bytes, k, m, j0, x, n, y, ldy, panel);                       \
    }
GEMM(gemm_q4_0, THEMIS_BYTE_Q4_0, 18, 32, 32, 8)
GEMM(gemm_q4_1, THEMIS_BYTE_Q4_1, 20, 32, 32, 8)
GEMM(gemm_q5_0, THEMIS_BYTE_Q5_0, 22, 32, 32, 4)
GEMM(gemm_q5_1, THEMIS_BYTE_Q5_1, 24, 32, 32, 4)
GEMM(gemm_q4_k, THEMIS_BYTE_Q4_K, 144, 256, 32, 8)
GEMM(gemm_q5_k, THEMIS_BYTE_Q5_K, 176, 256, 32, 4)
GEMM(gemm_q6_k, THEMIS_BYTE_Q6_K, 210, 256, 16, 2)
#if HAS_VNNI
GEMM(gemm_q8_0, THEMIS_BYTE_Q8_0, 34, 32, 32, 8)
#endif

themis_byte_gemm_fn themis_byte_gemm(int format) {
    switch (format) {
    case THEMIS_BYTE_Q4_0: return gemm_q4_0;
    case THEMIS_BYTE_Q4_1: return gemm_q4_1;
    case THEMIS_BYTE_Q5_0: return gemm_q5_0;
    case THEMIS_BYTE_Q5_1: return gemm_q5_1;
#if HAS_VNNI
    case THEMIS_BYTE_Q8_0: return gemm_q8_0;
#endif
    case THEMIS_BYTE_Q4_K: return gemm_q4_k;
    case THEMIS_BYTE_Q5_K: return gemm_q5_k;
    case THEMIS_BYTE_Q6_K: return gemm_q6_k;
    default: return 0;
    }
}

themis_byte_rows_fn themis_byte_rows(int format) {
    switch (format) {
    case THEMIS_BYTE_Q4_K: return rows_q4_k;
    case THEMIS_BYTE_Q5_K: return rows_q5_k;
    case THEMIS_BYTE_Q6_K: return rows_q6_k;
    case THEMIS_BYTE_Q4_0: return rows_q4_0;
    case THEMIS_BYTE_Q4_1: return rows_q4_1;
    case THEMIS_BYTE_Q5_0: return rows_q5_0;
    case THEMIS_BYTE_Q5_1: return rows_q5_1;
    case THEMIS_BYTE_Q8_0: return rows_q8_0;
    default: return 0;
    }
}

const char *themis_byte_dots_isa(void) { return ISA; }

#else

themis_byte_rows_fn themis_byte_rows(int format) {
    (void)format;
    return 0;
}

themis_byte_gemm_fn themis_byte_gemm(int format) {
    (void)format;
    return 0;
}

const char *themis_byte_dots_isa(void) { return "none"; }

#endif
