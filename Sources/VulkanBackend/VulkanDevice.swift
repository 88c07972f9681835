import CVulkan
import ThemisBackend

/// A logical device with one compute queue, and what the backend needs to know of its limits.
final class VulkanDevice: @unchecked Sendable {
    // Immutable after init; Vulkan objects are externally synchronised by the one backend using them.
    let loader: VulkanLoader
    let physical: VkPhysicalDevice
    let handle: VkDevice
    let queue: VkQueue
    let queueFamily: UInt32
    let fn: DeviceFunctions
    let info: DeviceInfo

    /// Largest range one storage-buffer binding may cover.
    let maxBindingRange: Int
    /// Alignment of a binding's offset.
    let bindingAlignment: Int
    /// Largest single `vkAllocateMemory`.
    let maxAllocation: Int
    /// Whether compute shaders may use subgroup arithmetic (`subgroupAdd`).
    let subgroupArithmetic: Bool
    let maxGroupCount: (x: Int, y: Int)
    /// Most invocations in one workgroup (at least 128 on every device).
    let maxInvocations: Int
    /// Property flags of each memory type.
    let memoryTypes: [UInt32]

    /// Where a buffer lives: device-local (weights, activations) or host-visible (staging).
    enum Placement {
        case device, host

        var required: UInt32 {
            self == .device ? 0 : VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        }
        var preferred: UInt32 {
            self == .device ? VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue : VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue
        }
    }

    /// The memory type for `placement` among those `allowed` (a buffer's memoryTypeBits).
    func memoryType(_ placement: Placement, allowed: UInt32) -> UInt32? {
        let candidates = memoryTypes.indices.filter {
            allowed & (1 << UInt32($0)) != 0 && memoryTypes[$0] & placement.required == placement.required
        }
        let best = candidates.first { memoryTypes[$0] & placement.preferred == placement.preferred } ?? candidates.first
        return best.map(UInt32.init)
    }

    init(loader: VulkanLoader, physical device: PhysicalDevice, info: DeviceInfo) throws {
        self.loader = loader
        self.physical = device.handle
        self.info = info
        guard let createDevice: PFN_vkCreateDevice = loader.function("vkCreateDevice"),
              let getDeviceProcAddr: PFN_vkGetDeviceProcAddr = loader.function("vkGetDeviceProcAddr")
        else { throw VulkanError.missingEntryPoint("device creation") }

        let families = device.queueFamilies
        // a compute-only family first (often a separate engine), else any with compute
        let compute = families.indices.filter { families[$0].queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }
        guard let family = compute.first(where: { families[$0].queueFlags & VK_QUEUE_GRAPHICS_BIT.rawValue == 0 })
                ?? compute.first
        else { throw BackendError.unavailable("\(info.id) has no compute queue") }
        queueFamily = UInt32(family)

        let limits = device.properties.limits
        maxBindingRange = Int(limits.maxStorageBufferRange)
        bindingAlignment = max(256, Int(limits.minStorageBufferOffsetAlignment))
        maxAllocation = Int(min(device.maxMemoryAllocationSize, UInt64(Int.max)))
        subgroupArithmetic = device.subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT.rawValue != 0
            && device.subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT.rawValue != 0
        maxGroupCount = (Int(limits.maxComputeWorkGroupCount.0), Int(limits.maxComputeWorkGroupCount.1))
        maxInvocations = Int(min(limits.maxComputeWorkGroupInvocations, limits.maxComputeWorkGroupSize.0))

        memoryTypes = device.memoryTypes.map(\.propertyFlags)

        var created: VkDevice?
        let result: VkResult = withUnsafePointer(to: Float(1)) { priority in
            var queueInfo = VkDeviceQueueCreateInfo()
            queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
            queueInfo.queueFamilyIndex = UInt32(family)
            queueInfo.queueCount = 1
            queueInfo.pQueuePriorities = priority
            return withUnsafePointer(to: &queueInfo) { queuePointer in
                var deviceInfo = VkDeviceCreateInfo()
                deviceInfo.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                deviceInfo.queueCreateInfoCount = 1
                deviceInfo.pQueueCreateInfos = queuePointer
                return createDevice(device.handle, &deviceInfo, nil, &created)
            }
        }
        try check(result, "vkCreateDevice")
        guard let logical = created else { throw VulkanError.call("vkCreateDevice", result) }
        handle = logical
        do {
            fn = try DeviceFunctions(device: logical, getDeviceProcAddr: getDeviceProcAddr)
        } catch {
            if let destroy: PFN_vkDestroyDevice = loader.function("vkDestroyDevice") { destroy(logical, nil) }
            throw error
        }
        var q: VkQueue?
        fn.getDeviceQueue(logical, UInt32(family), 0, &q)
        queue = q!
    }

    deinit {
        _ = fn.deviceWaitIdle(handle)
        fn.destroyDevice(handle, nil)
    }

    /// A buffer bound to fresh memory of `memoryType`; out of memory is `VulkanError.outOfMemory`.
    func makeBuffer(bytes: Int, placement: Placement) throws -> (buffer: VkBuffer, memory: VkDeviceMemory) {
        var create = VkBufferCreateInfo()
        create.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        create.size = VkDeviceSize(bytes)
        create.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
            | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
        create.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try check(fn.createBuffer(handle, &create, nil, &buffer), "vkCreateBuffer")
        var requirements = VkMemoryRequirements()
        fn.getBufferMemoryRequirements(handle, buffer, &requirements)
        guard let memoryType = memoryType(placement, allowed: requirements.memoryTypeBits) else {
            fn.destroyBuffer(handle, buffer, nil)
            throw BackendError.unavailable("\(info.id) has no \(placement) memory type for storage buffers")
        }
        var allocate = VkMemoryAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        allocate.allocationSize = requirements.size
        allocate.memoryTypeIndex = memoryType
        var memory: VkDeviceMemory?
        let result = fn.allocateMemory(handle, &allocate, nil, &memory)
        guard result == VK_SUCCESS, let memory else {
            fn.destroyBuffer(handle, buffer, nil)
            if result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY {
                throw VulkanError.outOfMemory(bytes: bytes, device: "\(info.id) (\(info.name))")
            }
            throw VulkanError.call("vkAllocateMemory", result)
        }
        try check(fn.bindBufferMemory(handle, buffer, memory, 0), "vkBindBufferMemory")
        return (buffer!, memory)
    }

    func destroy(buffer: VkBuffer, memory: VkDeviceMemory) {
        fn.destroyBuffer(handle, buffer, nil)
        fn.freeMemory(handle, memory, nil)
    }

    /// Maps host-visible memory for the lifetime of the buffer.
    func map(_ memory: VkDeviceMemory) throws -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        try check(fn.mapMemory(handle, memory, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &pointer), "vkMapMemory")
        return pointer!
    }
}
