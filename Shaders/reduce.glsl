// Workgroup-wide sum and maximum through shared memory (the workgroup size is a power of two).
shared float reduceScratch[gl_WorkGroupSize.x];

float workgroupSum(float value) {
    uint tid = gl_LocalInvocationID.x;
    barrier();
    reduceScratch[tid] = value;
    barrier();
    for (uint width = gl_WorkGroupSize.x / 2u; width > 0u; width /= 2u) {
        if (tid < width) reduceScratch[tid] += reduceScratch[tid + width];
        barrier();
    }
    return reduceScratch[0];
}

float workgroupMax(float value) {
    uint tid = gl_LocalInvocationID.x;
    barrier();
    reduceScratch[tid] = value;
    barrier();
    for (uint width = gl_WorkGroupSize.x / 2u; width > 0u; width /= 2u) {
        if (tid < width) reduceScratch[tid] = max(reduceScratch[tid], reduceScratch[tid + width]);
        barrier();
    }
    return reduceScratch[0];
}
