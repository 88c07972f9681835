// The one-token dots of the quantised block formats against 8-bit activations, with the x86
// byte multiply-adds Swift does not reach: vpdpbusd (AVX-512 VNNI) and vpmaddubsw (AVX2).
// The CPU backend's Swift kernels compute the same sums and stay the portable path: where this
// build has neither instruction set, themis_byte_rows returns NULL.
#ifndef THEMIS_CBYTEDOTS_H
#define THEMIS_CBYTEDOTS_H

#include <stddef.h>
#include <stdint.h>

/// Block formats with a byte dot (GGUF's Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K).
typedef enum {
    THEMIS_BYTE_Q4_0 = 0,
    THEMIS_BYTE_Q4_1 = 1,
    THEMIS_BYTE_Q5_0 = 2,
    THEMIS_BYTE_Q5_1 = 3,
    THEMIS_BYTE_Q8_0 = 4,
    THEMIS_BYTE_Q4_K = 5,
    THEMIS_BYTE_Q5_K = 6,
    THEMIS_BYTE_Q6_K = 7,
} themis_byte_format;

/// y[r] = dot(weight row r, x) for r in [row_start, row_end). `w`: the weight's first row,
/// rows `row_bytes` apart, `k` (a multiple of the format's block) elements each. `xq`: x rounded
/// to k signed bytes (-127...127), `xd[b]`: the scale of its 32-element piece b (for the
/// K-quants one scale per 256 elements, repeated over its 8 pieces), `xs[b]`: xd[b] times the
/// sum of piece b's bytes, `xsum16[i]`: the sum of bytes 16i ..< 16i + 16 (Q6_K's offsets).
typedef void (*themis_byte_rows_fn)(const void *w, size_t row_bytes, int k, const int8_t *xq, const float *xd,
                                    const float *xs, const int16_t *xsum16, float *y, int row_start, int row_end);

/// The row kernel of `format`, or NULL when this build has no byte multiply-add.
themis_byte_rows_fn themis_byte_rows(int format);

/// Activation rows rounded to bytes for the GEMM: row i's k bytes at `q + i·stride`, its scale
/// per 32 elements at `d + i·stride` and its sums per 16 bytes at `sums16 + i·stride` (every
/// pointer advanced by `stride` bytes per row).
typedef struct {
    const int8_t *q;
    const float *d;
    const int16_t *sums16;
    size_t stride;
} themis_byte_rows_in;

/// y[i][j] = dot(weight row j0 + j, x row i) for i < n and j < min(16, m - j0), y's rows `ldy`
/// floats apart: one panel of 16 weight rows, unpacked once into `panel`
/// (themis_byte_gemm_panel_bytes(k) bytes, 64-byte aligned) and multiplied with every x row.
typedef void (*themis_byte_gemm_fn)(const void *w, size_t row_bytes, int k, int m, int j0, themis_byte_rows_in x,
                                    int n, float *y, size_t ldy, void *panel);

/// The GEMM of `format`, or NULL where this build has no byte multiply-add (and for Q8_0 where it
/// has no VNNI: vpmaddubsw would saturate on its values).
themis_byte_gemm_fn themis_byte_gemm(int format);

/// Bytes of a GEMM panel for rows of `k` elements.
size_t themis_byte_gemm_panel_bytes(int k);

/// The instructions the kernels use: "avx512-vnni", "avx2", or "none".
const char *themis_byte_dots_isa(void);

#endif
