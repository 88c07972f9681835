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
    /// Memory type for weights and activations (device-local) and for staging (host-visible).
    let deviceMemoryType: UInt32
    let hostMemoryType: UInt32

    init(loader: VulkanLoader, physical: VkPhysicalDevice, info: DeviceInfo) throws {
        self.loader = loader
        self.physical = physical
        self.info = info
        guard let queues: PFN_vkGetPhysicalDeviceQueueFamilyProperties =
                loader.function("vkGetPhysicalDeviceQueueFamilyProperties"),
              let properties2: PFN_vkGetPhysicalDeviceProperties2 = loader.function("vkGetPhysicalDeviceProperties2"),
              let memoryProperties: PFN_vkGetPhysicalDeviceMemoryProperties =
                loader.function("vkGetPhysicalDeviceMemoryProperties"),
              let createDevice: PFN_vkCreateDevice = loader.function("vkCreateDevice"),
              let getDeviceProcAddr: PFN_vkGetDeviceProcAddr = loader.function("vkGetDeviceProcAddr")
        else { throw VulkanError.missingEntryPoint("device creation") }

        var familyCount: UInt32 = 0
        queues(physical, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        queues(physical, &familyCount, &families)
        // a compute-only family first (often a separate engine), else any with compute
        let compute = families.indices.filter { families[$0].queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }
        guard let family = compute.first(where: { families[$0].queueFlags & VK_QUEUE_GRAPHICS_BIT.rawValue == 0 })
                ?? compute.first
        else { throw BackendError.unavailable("\(info.id) has no compute queue") }
        queueFamily = UInt32(family)

        var subgroup = VkPhysicalDeviceSubgroupProperties()
        subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES
        var maintenance3 = VkPhysicalDeviceMaintenance3Properties()
        maintenance3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES
        var props = VkPhysicalDeviceProperties2()
        props.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
        withUnsafeMutablePointer(to: &maintenance3) { m3 in
            subgroup.pNext = UnsafeMutableRawPointer(m3)
            withUnsafeMutablePointer(to: &subgroup) { sub in
                props.pNext = UnsafeMutableRawPointer(sub)
                properties2(physical, &props)
            }
        }
        let limits = props.properties.limits
        maxBindingRange = Int(limits.maxStorageBufferRange)
        bindingAlignment = max(256, Int(limits.minStorageBufferOffsetAlignment))
        maxAllocation = Int(min(maintenance3.maxMemoryAllocationSize, UInt64(Int.max)))
        subgroupArithmetic = subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT.rawValue != 0
            && subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT.rawValue != 0
        maxGroupCount = (Int(limits.maxComputeWorkGroupCount.0), Int(limits.maxComputeWorkGroupCount.1))
        maxInvocations = Int(min(limits.maxComputeWorkGroupInvocations, limits.maxComputeWorkGroupSize.0))

        var memory = VkPhysicalDeviceMemoryProperties()
        memoryProperties(physical, &memory)
        let types = withUnsafeBytes(of: memory.memoryTypes) { raw in
            Array(raw.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount)))
        }
        func firstType(_ required: UInt32, preferring preferred: UInt32 = 0) -> UInt32? {
            let candidates = types.indices.filter { types[$0].propertyFlags & required == required }
            let best = candidates.first { types[$0].propertyFlags & preferred == preferred } ?? candidates.first
            return best.map(UInt32.init)
        }
        let hostVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        guard let deviceType = firstType(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue) ?? firstType(0),
              let hostType = firstType(hostVisible, preferring: VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue)
        else { throw BackendError.unavailable("\(info.id) has no usable memory types") }
        deviceMemoryType = deviceType
        hostMemoryType = hostType

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
                return createDevice(physical, &deviceInfo, nil, &created)
            }
        }
        try check(result, "vkCreateDevice")
        guard let device = created else { throw VulkanError.call("vkCreateDevice", result) }
        handle = device
        do {
            fn = try DeviceFunctions(device: device, getDeviceProcAddr: getDeviceProcAddr)
        } catch {
            if let destroy: PFN_vkDestroyDevice = loader.function("vkDestroyDevice") { destroy(device, nil) }
            throw error
        }
        var q: VkQueue?
        fn.getDeviceQueue(device, UInt32(family), 0, &q)
        queue = q!
    }

    deinit {
        _ = fn.deviceWaitIdle(handle)
        fn.destroyDevice(handle, nil)
    }

    /// A buffer bound to fresh memory of `memoryType` (`nil` memory when it cannot be had).
    func makeBuffer(bytes: Int, memoryType: UInt32) throws -> (buffer: VkBuffer, memory: VkDeviceMemory) {
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
