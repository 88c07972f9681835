import CVulkan
import Synchronization

/// A range of a pooled device buffer.
struct BufferRange: Hashable, @unchecked Sendable {  // Vulkan handles are plain values
    let buffer: VkBuffer
    let offset: Int
    let bytes: Int
}

/// Sub-allocates device-local memory: large blocks, each one `VkDeviceMemory` bound to one
/// `VkBuffer`, carved into aligned ranges with a first-fit free list, so tensors never cost an
/// allocation of their own (drivers cap the number of allocations, some at 4096).
final class MemoryPool: Sendable {
    private struct Block: @unchecked Sendable {  // handles used under the lock only
        let buffer: VkBuffer
        let memory: VkDeviceMemory
        let size: Int
        var free: [(offset: Int, bytes: Int)]  // sorted by offset, coalesced
    }

    private let device: VulkanDevice
    private let blockSize: Int
    private let state = Mutex<[Block]>([])

    init(device: VulkanDevice, blockSize: Int = 256 << 20) {
        self.device = device
        self.blockSize = min(blockSize, device.maxAllocation)
    }

    deinit {
        state.withLock { blocks in
            for b in blocks { device.destroy(buffer: b.buffer, memory: b.memory) }
        }
    }

    /// Bytes held from the driver.
    var reservedBytes: Int { state.withLock { $0.reduce(0) { $0 + $1.size } } }

    /// `bytes` (rounded up to the binding alignment) from some block; a new block when none has room.
    func allocate(_ bytes: Int) throws -> BufferRange {
        let alignment = device.bindingAlignment
        let size = (max(bytes, 1) + alignment - 1) / alignment * alignment
        if let range = state.withLock({ blocks in Self.take(size, from: &blocks) }) { return range }
        guard size <= device.maxAllocation else {
            throw VulkanError.tooLarge(
                "a \(size >> 20) MiB buffer exceeds \(device.info.id)'s largest allocation (\(device.maxAllocation >> 20) MiB)")
        }
        let blockBytes = max(size, blockSize)
        let (buffer, memory) = try device.makeBuffer(bytes: blockBytes, placement: .device)
        return state.withLock { blocks in
            blocks.append(Block(buffer: buffer, memory: memory, size: blockBytes, free: [(0, blockBytes)]))
            return Self.take(size, from: &blocks)!
        }
    }

    /// Returns a range given by `allocate`.
    func release(_ range: BufferRange) {
        let alignment = device.bindingAlignment
        let size = (max(range.bytes, 1) + alignment - 1) / alignment * alignment
        state.withLock { blocks in
            guard let b = blocks.firstIndex(where: { $0.buffer == range.buffer }) else { return }
            var free = blocks[b].free
            let at = free.firstIndex(where: { $0.offset > range.offset }) ?? free.count
            free.insert((range.offset, size), at: at)
            // merge with the neighbours
            if at + 1 < free.count, free[at].offset + free[at].bytes == free[at + 1].offset {
                free[at].bytes += free[at + 1].bytes
                free.remove(at: at + 1)
            }
            if at > 0, free[at - 1].offset + free[at - 1].bytes == free[at].offset {
                free[at - 1].bytes += free[at].bytes
                free.remove(at: at)
            }
            blocks[b].free = free
        }
    }

    private static func take(_ size: Int, from blocks: inout [Block]) -> BufferRange? {
        for b in blocks.indices {
            if let f = blocks[b].free.firstIndex(where: { $0.bytes >= size }) {
                let hole = blocks[b].free[f]
                if hole.bytes == size {
                    blocks[b].free.remove(at: f)
                } else {
                    blocks[b].free[f] = (hole.offset + size, hole.bytes - size)
                }
                return BufferRange(buffer: blocks[b].buffer, offset: hole.offset, bytes: size)
            }
        }
        return nil
    }
}

/// A tensor's memory on the device: one range for activations, several row ranges ("pieces")
/// for a weight larger than one binding may cover.
final class VulkanStorage: @unchecked Sendable {
    // Immutable after init; the pool is thread-safe, so the last reference may drop anywhere.
    struct Piece {
        let range: BufferRange
        /// Rows of the tensor held by this piece.
        let rows: Range<Int>
    }
    let pieces: [Piece]
    private let pool: MemoryPool

    init(pool: MemoryPool, pieces: [Piece]) {
        self.pool = pool
        self.pieces = pieces
    }

    deinit {
        for p in pieces { pool.release(p.range) }
    }

    /// The single piece of an activation tensor.
    var whole: BufferRange { pieces[0].range }
}
