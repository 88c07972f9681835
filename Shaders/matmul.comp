#version 450
// y[i, rowStart + r] = x[i, :] · w[r, :] for many tokens (prefill), tiled through shared memory:
// a workgroup computes a BM (weight rows) x BN (tokens) tile, stepping through k in slices of 32
// (one quantisation block or K-quant sub-block), each thread a TM x TN patch of it. Weights are
// dequantised once per tile into shared memory.
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 32;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 2;
// (BM / TM) * (BN / TN) threads
layout(local_size_x_id = 0) in;
const uint BK = 32;

#include "dequant.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Parameters {
    uint n, k, rows, rowBytes;
    uint xOffset, yOffset, yStride;
    uint rowStart;
    uint groupsX;
    uint wBase;
} p;

shared float ws[BK * BM];  // [kk][row]
shared float xs[BK * BN];  // [kk][token]

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint threads = gl_WorkGroupSize.x;
    uint r0 = gl_WorkGroupID.x * BM;
    uint n0 = gl_WorkGroupID.y * BN;
    uint tr = tid % (BM / TM);
    uint tc = tid / (BM / TM);

    float acc[TM * TN];
    for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        for (uint g = tid; g < BM * (BK / 8u); g += threads) {
            uint row = g / (BK / 8u);
            uint kk = (g % (BK / 8u)) * 8u;
            float w[8];
            if (r0 + row < p.rows && k0 + kk < p.k) {
                load8(p.wBase + (r0 + row) * p.rowBytes, k0 + kk, p.k, w);
            } else {
                for (uint t = 0u; t < 8u; t++) w[t] = 0.0;
            }
            for (uint t = 0u; t < 8u; t++) ws[(kk + t) * BM + row] = w[t];
        }
        for (uint idx = tid; idx < BN * BK; idx += threads) {
            uint c = idx / BK;
            uint kk = idx % BK;
            bool inside = n0 + c < p.n && k0 + kk < p.k;
            xs[kk * BN + c] = inside ? x[p.xOffset + (n0 + c) * p.k + k0 + kk] : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[TM];
            float b[TN];
            for (uint i = 0u; i < TM; i++) a[i] = ws[kk * BM + tr * TM + i];
            for (uint j = 0u; j < TN; j++) b[j] = xs[kk * BN + tc * TN + j];
            for (uint j = 0u; j < TN; j++) {
                for (uint i = 0u; i < TM; i++) acc[j * TM + i] += a[i] * b[j];
            }
        }
        barrier();
    }

    for (uint j = 0u; j < TN; j++) {
        uint token = n0 + tc * TN + j;
        if (token >= p.n) continue;
        for (uint i = 0u; i < TM; i++) {
            uint row = r0 + tr * TM + i;
            if (row < p.rows) y[p.yOffset + token * p.yStride + p.rowStart + row] = acc[j * TM + i];
        }
    }
}
