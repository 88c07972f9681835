import CVulkan
import ThemisBackend

/// What one physical device reports, queried once: used both to list devices and to open one.
struct PhysicalDevice: @unchecked Sendable {
    // Plain values and a handle owned by the instance.
    let handle: VkPhysicalDevice
    let properties: VkPhysicalDeviceProperties
    let subgroup: VkPhysicalDeviceSubgroupProperties
    let maxMemoryAllocationSize: UInt64
    let queueFamilies: [VkQueueFamilyProperties]
    let memory: VkPhysicalDeviceMemoryProperties
    let fp16: Bool, int8: Bool, storage16Bit: Bool

    init(loader: VulkanLoader, handle: VkPhysicalDevice) throws {
        guard let properties2: PFN_vkGetPhysicalDeviceProperties2 = loader.function("vkGetPhysicalDeviceProperties2"),
              let features2: PFN_vkGetPhysicalDeviceFeatures2 = loader.function("vkGetPhysicalDeviceFeatures2"),
              let memoryProperties: PFN_vkGetPhysicalDeviceMemoryProperties =
                loader.function("vkGetPhysicalDeviceMemoryProperties"),
              let queues: PFN_vkGetPhysicalDeviceQueueFamilyProperties =
                loader.function("vkGetPhysicalDeviceQueueFamilyProperties")
        else { throw VulkanError.missingEntryPoint("physical-device queries") }
        self.handle = handle

        var familyCount: UInt32 = 0
        queues(handle, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        queues(handle, &familyCount, &families)
        queueFamilies = families

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
                properties2(handle, &props)
            }
        }
        subgroup.pNext = nil
        properties = props.properties
        self.subgroup = subgroup
        maxMemoryAllocationSize = maintenance3.maxMemoryAllocationSize

        var storage16 = VkPhysicalDevice16BitStorageFeatures()
        storage16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES
        var float16Int8 = VkPhysicalDeviceShaderFloat16Int8Features()
        float16Int8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES
        var features = VkPhysicalDeviceFeatures2()
        features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        withUnsafeMutablePointer(to: &storage16) { s16 in
            float16Int8.pNext = UnsafeMutableRawPointer(s16)
            withUnsafeMutablePointer(to: &float16Int8) { f16 in
                features.pNext = UnsafeMutableRawPointer(f16)
                features2(handle, &features)
            }
        }
        fp16 = float16Int8.shaderFloat16 != 0
        int8 = float16Int8.shaderInt8 != 0
        storage16Bit = storage16.storageBuffer16BitAccess != 0

        var mem = VkPhysicalDeviceMemoryProperties()
        memoryProperties(handle, &mem)
        memory = mem
    }

    var hasComputeQueue: Bool { queueFamilies.contains { $0.queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 } }

    var memoryHeaps: [VkMemoryHeap] {
        withUnsafeBytes(of: memory.memoryHeaps) { raw in
            Array(raw.bindMemory(to: VkMemoryHeap.self).prefix(Int(memory.memoryHeapCount)))
        }
    }

    var memoryTypes: [VkMemoryType] {
        withUnsafeBytes(of: memory.memoryTypes) { raw in
            Array(raw.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount)))
        }
    }

    /// The description `themis devices` prints, as device `vulkan:<index>`.
    func info(index: Int) -> DeviceInfo {
        let p = properties
        let name = withUnsafeBytes(of: p.deviceName) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let heaps = memoryHeaps
        let deviceLocal = heaps.filter { $0.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 }.map(\.size).reduce(0, +)
        let kind: DeviceKind
        switch p.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: kind = .discrete
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: kind = .integrated
        case VK_PHYSICAL_DEVICE_TYPE_CPU: kind = .software
        default: kind = .other
        }
        func version(_ v: UInt32) -> String { "\(v >> 22).\((v >> 12) & 0x3FF).\(v & 0xFFF)" }
        let features = DeviceFeatures(
            fp16: fp16, int8Dot: int8, storage16Bit: storage16Bit, subgroupSize: Int(subgroup.subgroupSize),
            maxBufferRange: Int(p.limits.maxStorageBufferRange))
        let heapText = heaps.map {
            "\($0.size >> 20) MiB\($0.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 ? " device-local" : "")"
        }
        return DeviceInfo(
            id: "vulkan:\(index)", name: name, kind: kind, memoryBytes: deviceLocal,
            computeUnits: Int(subgroup.subgroupSize), features: features,
            details: [
                "API \(version(p.apiVersion)), driver \(p.driverVersion)",
                "memory heaps: " + heapText.joined(separator: ", "),
                "subgroup size \(subgroup.subgroupSize); fp16 \(features.fp16), int8 \(features.int8Dot), "
                    + "16-bit storage \(features.storage16Bit); max storage buffer range \(p.limits.maxStorageBufferRange) B",
            ])
    }
}
