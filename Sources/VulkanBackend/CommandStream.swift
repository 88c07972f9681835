import CVulkan

/// Records ops into one command buffer and submits it when results are needed.
///
/// Barriers: an op that reads or writes a piece of memory written since the last barrier, or
/// writes one read since then, gets a global memory barrier first; independent ops (Q, K and V
/// from one input) run without one between them. Host data (uploads, token ids, RoPE angles) is
/// written into a host-visible arena before submission, which makes it visible to the device.
/// `submit()` is the only wait: one fence per submitted command buffer, none per op.
final class CommandStream {
    private let device: VulkanDevice
    private let commandPool: VkCommandPool
    private let commandBuffer: VkCommandBuffer
    private let fence: VkFence
    private var recording = false
    /// Tensor storages used by recorded commands, kept alive until they have run.
    private var retained: [AnyObject] = []
    private var writtenSinceBarrier = Set<BufferRange>()
    private var readSinceBarrier = Set<BufferRange>()

    /// Host-visible staging memory for uploads and small per-op tables.
    private var arena: HostBuffer
    private var arenaUsed = 0
    /// Bumped at every submission: arena offsets of an older generation are gone.
    private(set) var generation = 0
    private var readback: HostBuffer?
    /// Commands recorded since the last submission.
    private(set) var pendingCommands = 0

    init(device: VulkanDevice, arenaBytes: Int) throws {
        self.device = device
        let fn = device.fn, d = device.handle
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT.rawValue
        poolInfo.queueFamilyIndex = device.queueFamily
        var pool: VkCommandPool?
        try check(fn.createCommandPool(d, &poolInfo, nil, &pool), "vkCreateCommandPool")
        commandPool = pool!
        var allocate = VkCommandBufferAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocate.commandPool = pool
        allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocate.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        try check(fn.allocateCommandBuffers(d, &allocate, &buffer), "vkAllocateCommandBuffers")
        commandBuffer = buffer!
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var f: VkFence?
        try check(fn.createFence(d, &fenceInfo, nil, &f), "vkCreateFence")
        fence = f!
        arena = try HostBuffer(device: device, bytes: min(arenaBytes, device.maxBindingRange))
    }

    deinit {
        if recording { try? submit() }
        let fn = device.fn, d = device.handle
        fn.destroyFence(d, fence, nil)
        fn.destroyCommandPool(d, commandPool, nil)
    }

    /// The arena as a binding (offsets into it are passed to kernels).
    var arenaRange: BufferRange { BufferRange(buffer: arena.buffer, offset: 0, bytes: arena.bytes) }

    private func begin() throws {
        guard !recording else { return }
        var info = VkCommandBufferBeginInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        info.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue
        try check(device.fn.beginCommandBuffer(commandBuffer, &info), "vkBeginCommandBuffer")
        recording = true
    }

    /// Orders this command after earlier ones that touch the same memory.
    private func hazard(reads: [BufferRange], writes: [BufferRange]) {
        let conflict = reads.contains { writtenSinceBarrier.contains($0) }
            || writes.contains { writtenSinceBarrier.contains($0) || readSinceBarrier.contains($0) }
        if conflict {
            barrier(dstStage: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                    dstAccess: VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                        | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        }
        readSinceBarrier.formUnion(reads)
        writtenSinceBarrier.formUnion(writes)
    }

    private func barrier(dstStage: UInt32, dstAccess: UInt32) {
        var b = VkMemoryBarrier()
        b.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
        b.dstAccessMask = dstAccess
        device.fn.cmdPipelineBarrier(
            commandBuffer,
            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
            dstStage, 0, 1, &b, 0, nil, 0, nil)
        writtenSinceBarrier.removeAll(keepingCapacity: true)
        readSinceBarrier.removeAll(keepingCapacity: true)
    }

    /// Records one dispatch of `kernel` over `bindings` (reads and writes named for barriers).
    func dispatch(_ kernel: Kernel, bindings: [BufferRange], reads: [BufferRange], writes: [BufferRange],
                  push: [UInt32], groups: (Int, Int, Int), retain: [AnyObject]) throws {
        precondition(push.count * 4 <= PipelineCache.pushConstantBytes, "push constants too large")
        guard groups.0 > 0, groups.1 > 0, groups.2 > 0 else { return }
        let set = try pipelines.descriptorSet(bindings)
        try begin()
        hazard(reads: reads, writes: writes)
        let fn = device.fn
        fn.cmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.pipeline)
        var s: VkDescriptorSet? = set
        fn.cmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.layout, 0, 1, &s, 0, nil)
        push.withUnsafeBytes { bytes in
            fn.cmdPushConstants(commandBuffer, kernel.layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0,
                                UInt32(bytes.count), bytes.baseAddress)
        }
        fn.cmdDispatch(commandBuffer, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        retained += retain
        pendingCommands += 1
    }

    /// Set by the backend after init (the cache and the stream share the device).
    var pipelines: PipelineCache!

    /// Records a copy of `bytes` bytes between two device ranges.
    func copy(from source: BufferRange, offset sourceOffset: Int, to destination: BufferRange,
              offset destinationOffset: Int, bytes: Int, retain: [AnyObject]) throws {
        guard bytes > 0 else { return }
        try begin()
        hazard(reads: [source], writes: [destination])
        var region = VkBufferCopy(srcOffset: VkDeviceSize(source.offset + sourceOffset),
                                  dstOffset: VkDeviceSize(destination.offset + destinationOffset),
                                  size: VkDeviceSize(bytes))
        device.fn.cmdCopyBuffer(commandBuffer, source.buffer, destination.buffer, 1, &region)
        retained += retain
        pendingCommands += 1
    }

    /// Records zero-filling a device range.
    func zero(_ range: BufferRange, retain: AnyObject) throws {
        try begin()
        hazard(reads: [], writes: [range])
        device.fn.cmdFillBuffer(commandBuffer, range.buffer, VkDeviceSize(range.offset), VkDeviceSize(range.bytes), 0)
        retained.append(retain)
        pendingCommands += 1
    }

    /// Copies `bytes` into the arena and returns their offset there (aligned to 16), submitting
    /// first when the arena is full. `bytes.count` must fit in the arena.
    func stage(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        precondition(bytes.count <= arena.bytes, "\(bytes.count) bytes do not fit the staging arena")
        var offset = (arenaUsed + 15) & ~15
        if offset + bytes.count > arena.bytes {
            try submit()
            offset = 0
        }
        if let base = bytes.baseAddress, bytes.count > 0 {
            (arena.mapped + offset).copyMemory(from: base, byteCount: bytes.count)
        }
        arenaUsed = offset + bytes.count
        return offset
    }

    /// Records an upload of `bytes` into `destination` at `offset`, in arena-sized pieces.
    func upload(_ bytes: UnsafeRawBufferPointer, to destination: BufferRange, offset: Int, retain: AnyObject) throws {
        var done = 0
        while done < bytes.count {
            let chunk = min(bytes.count - done, arena.bytes)
            let at = try stage(UnsafeRawBufferPointer(rebasing: bytes[done..<done + chunk]))
            try copy(from: arenaRange, offset: at, to: destination, offset: offset + done, bytes: chunk, retain: [retain])
            done += chunk
        }
    }

    /// Records a copy of `bytes` bytes from `source` at `offset` into host memory, submits, waits
    /// and hands the bytes to `body`.
    func download<R>(_ source: BufferRange, offset: Int, bytes: Int, retain: AnyObject,
                     _ body: (UnsafeRawBufferPointer) -> R) throws -> R {
        if readback == nil || readback!.bytes < bytes {
            try submit()  // nothing recorded may still use the old buffer
            readback = nil
            readback = try HostBuffer(device: device, bytes: max(bytes, 1 << 20))
        }
        let host = readback!
        try begin()
        hazard(reads: [source], writes: [])
        var region = VkBufferCopy(srcOffset: VkDeviceSize(source.offset + offset), dstOffset: 0, size: VkDeviceSize(bytes))
        if bytes > 0 { device.fn.cmdCopyBuffer(commandBuffer, source.buffer, host.buffer, 1, &region) }
        retained.append(retain)
        try submit()
        return body(UnsafeRawBufferPointer(start: host.mapped, count: bytes))
    }

    /// Ends the command buffer, submits it and waits for it; a no-op when nothing is recorded.
    func submit() throws {
        guard recording else { return }
        let fn = device.fn
        // make device writes visible to the host (read-back) before the fence signals
        barrier(dstStage: VK_PIPELINE_STAGE_HOST_BIT.rawValue, dstAccess: VK_ACCESS_HOST_READ_BIT.rawValue)
        try check(fn.endCommandBuffer(commandBuffer), "vkEndCommandBuffer")
        recording = false
        var buffer: VkCommandBuffer? = commandBuffer
        var info = VkSubmitInfo()
        info.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
        info.commandBufferCount = 1
        var f: VkFence? = fence
        try withUnsafePointer(to: &buffer) { buffers in
            info.pCommandBuffers = buffers
            try check(fn.queueSubmit(device.queue, 1, &info, fence), "vkQueueSubmit")
        }
        try check(fn.waitForFences(device.handle, 1, &f, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
        try check(fn.resetFences(device.handle, 1, &f), "vkResetFences")
        try check(fn.resetCommandBuffer(commandBuffer, 0), "vkResetCommandBuffer")
        retained.removeAll(keepingCapacity: true)
        arenaUsed = 0
        generation += 1
        pendingCommands = 0
    }
}

/// A host-visible, persistently mapped buffer (staging and read-back).
final class HostBuffer {
    let buffer: VkBuffer
    let memory: VkDeviceMemory
    let mapped: UnsafeMutableRawPointer
    let bytes: Int
    private let device: VulkanDevice

    init(device: VulkanDevice, bytes: Int) throws {
        self.device = device
        self.bytes = bytes
        (buffer, memory) = try device.makeBuffer(bytes: bytes, placement: .host)
        do {
            mapped = try device.map(memory)
        } catch {
            device.destroy(buffer: buffer, memory: memory)
            throw error
        }
    }

    deinit {
        device.fn.unmapMemory(device.handle, memory)
        device.destroy(buffer: buffer, memory: memory)
    }
}
