#version 450
// The input gradient through a weight: dx[i, c] (+)= Σ_j dy[i, j] · w[j, c] for many tokens,
// tiled as matmul.comp is: a workgroup computes a BM (columns of w) x BN (tokens) tile, stepping
// through the rows j of w in slices of 32, each thread a TM x TN patch. Each slice of w rows is
// dequantised once into shared memory, eight elements at a time along its rows.
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 32;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 2;
layout(local_size_x_id = 0) in;
const uint BK = 32;

#include "dequant.glsl"

layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) buffer DX { float dx[]; };

layout(push_constant) uniform Parameters {
    uint n, k, rows, rowBytes;      // tokens, columns of w, rows of w in this piece, bytes per row
    uint dyOffset, dxOffset, dyStride;
    uint rowStart;                  // the piece's first row of w: its column of dy
    uint accumulate;
    uint wBase;
} p;

shared float ws[BK * BM];  // [jj][column]
shared float gs[BK * BN];  // [jj][token]

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint threads = gl_WorkGroupSize.x;
    uint c0 = gl_WorkGroupID.x * BM;
    uint n0 = gl_WorkGroupID.y * BN;
    uint tr = tid % (BM / TM);
    uint tc = tid / (BM / TM);

    float acc[TM * TN];
    for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;

    for (uint j0 = 0u; j0 < p.rows; j0 += BK) {
        for (uint g = tid; g < BK * (BM / 8u); g += threads) {
            uint jj = g / (BM / 8u);
            uint cc = (g % (BM / 8u)) * 8u;
            float w[8];
            if (j0 + jj < p.rows && c0 + cc < p.k) {
                load8(p.wBase + (j0 + jj) * p.rowBytes, c0 + cc, p.k, w);
            } else {
                for (uint t = 0u; t < 8u; t++) w[t] = 0.0;
            }
            for (uint t = 0u; t < 8u; t++) ws[jj * BM + cc + t] = w[t];
        }
        for (uint idx = tid; idx < BN * BK; idx += threads) {
            uint c = idx / BK;
            uint jj = idx % BK;
            bool inside = n0 + c < p.n && j0 + jj < p.rows;
            gs[jj * BN + c] = inside ? dy[p.dyOffset + (n0 + c) * p.dyStride + p.rowStart + j0 + jj] : 0.0;
        }
        barrier();
        for (uint jj = 0u; jj < BK; jj++) {
            float a[TM];
            float b[TN];
            for (uint i = 0u; i < TM; i++) a[i] = ws[jj * BM + tr * TM + i];
            for (uint t = 0u; t < TN; t++) b[t] = gs[jj * BN + tc * TN + t];
            for (uint t = 0u; t < TN; t++) {
                for (uint i = 0u; i < TM; i++) acc[t * TM + i] += a[i] * b[t];
            }
        }
        barrier();
    }

    for (uint t = 0u; t < TN; t++) {
        uint token = n0 + tc * TN + t;
        if (token >= p.n) continue;
        for (uint i = 0u; i < TM; i++) {
            uint c = c0 + tr * TM + i;
            if (c >= p.k) continue;
            uint at = p.dxOffset + token * p.k + c;
            dx[at] = p.accumulate != 0u ? dx[at] + acc[t * TM + i] : acc[t * TM + i];
        }
    }
}
