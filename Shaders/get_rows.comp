#version 450
// out[i, :] = dequantise(table[ids[i], :]) for the ids that fall in this piece of the table.
// One invocation per 8 elements of an output row; x = group, y = output row.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

#include "dequant.glsl"

layout(std430, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, binding = 2) writeonly buffer Out { float outs[]; };

layout(push_constant) uniform Parameters {
    uint count, width, rowBytes;
    uint idsOffset, outOffset;   // in words / floats
    uint rowStart, rows;         // table rows held by this piece
} p;

void main() {
    uint g = gl_GlobalInvocationID.x;
    uint i = gl_GlobalInvocationID.y;
    uint e = 8u * g;
    if (i >= p.count || e >= p.width) return;
    uint id = ids[p.idsOffset + i];
    if (id < p.rowStart || id >= p.rowStart + p.rows) return;
    float v[8];
    load8((id - p.rowStart) * p.rowBytes, e, p.width, v);
    uint base = p.outOffset + i * p.width + e;
    for (uint t = 0u; t < 8u && e + t < p.width; t++) outs[base + t] = v[t];
}
