// Byte dots of the 32-element block formats (see include/CByteDots.h). Each block's weights are
// brought to 32 unsigned bytes (nibbles, five-bit values, or |q8| with the sign moved onto x),
// multiplied with x's signed bytes and summed into 8 int32 lanes by one multiply-add chain;
// what the offsets (-8, -16) and the mins add is a scalar per block, through x's block sums.
#include "CByteDots.h"

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>

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
                     float *y, int row_start, int row_end) {                                                       \
        rows(format, bytes, w, row_bytes, k, xq, xd, xs, y, row_start, row_end);                                   \
    }
ROWS(rows_q4_0, THEMIS_BYTE_Q4_0, 18)
ROWS(rows_q4_1, THEMIS_BYTE_Q4_1, 20)
ROWS(rows_q5_0, THEMIS_BYTE_Q5_0, 22)
ROWS(rows_q5_1, THEMIS_BYTE_Q5_1, 24)
ROWS(rows_q8_0, THEMIS_BYTE_Q8_0, 34)

themis_byte_rows_fn themis_byte_rows(int format) {
    switch (format) {
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

const char *themis_byte_dots_isa(void) { return "none"; }

#endif
