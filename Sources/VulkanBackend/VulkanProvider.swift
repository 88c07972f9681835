import CVulkan
import ThemisBackend

/// Lists the Vulkan devices that have a compute queue (`vulkan:0`, `vulkan:1`, ...) and opens
/// `VulkanBackend`s on them.
public struct VulkanProvider: BackendProvider {
    public let name = "vulkan"

    public init() {}

    public func devices() -> (devices: [DeviceInfo], diagnostic: String?) {
        do {
            let loader = try VulkanLoader()
            let devices = try Self.enumerate(loader).map(\.info)
            return (devices, devices.isEmpty ? "no Vulkan device with a compute queue" : nil)
        } catch {
            return ([], String(describing: error))
        }
    }

    public func makeBackend(on device: DeviceInfo) throws -> any Backend {
        try makeVulkanBackend(on: device)
    }

    /// A backend on `device`. For tests of the fall-back paths: `subgroups: false` makes the
    /// decode kernels reduce through shared memory even where the device has subgroup arithmetic;
    /// `pieceLimit` splits weights into pieces of at most that many bytes (as the device's
    /// largest binding range does for very large tensors); `roundDecodeActivations: true` rounds
    /// one-token activations to 8-bit blocks as the CPU backend's fast path does.
    public func makeVulkanBackend(on device: DeviceInfo, subgroups: Bool? = nil, pieceLimit: Int? = nil,
                                  roundDecodeActivations: Bool = false) throws -> VulkanBackend {
        let loader = try VulkanLoader()
        guard let found = try Self.enumerate(loader).first(where: { $0.info.id == device.id }) else {
            throw BackendError.deviceNotFound(device.id, available: [])
        }
        let vk = try VulkanDevice(loader: loader, physical: found.handle, info: found.info)
        return try VulkanBackend(device: vk, subgroups: subgroups, pieceLimit: pieceLimit, roundDecodeActivations: roundDecodeActivations)
    }

    static func enumerate(_ loader: VulkanLoader) throws -> [(handle: VkPhysicalDevice, info: DeviceInfo)] {
        guard let enumerateDevices: PFN_vkEnumeratePhysicalDevices = loader.function("vkEnumeratePhysicalDevices"),
              let properties2: PFN_vkGetPhysicalDeviceProperties2 = loader.function("vkGetPhysicalDeviceProperties2"),
              let features2: PFN_vkGetPhysicalDeviceFeatures2 = loader.function("vkGetPhysicalDeviceFeatures2"),
              let memory: PFN_vkGetPhysicalDeviceMemoryProperties = loader.function("vkGetPhysicalDeviceMemoryProperties"),
              let queues: PFN_vkGetPhysicalDeviceQueueFamilyProperties =
                loader.function("vkGetPhysicalDeviceQueueFamilyProperties")
        else { throw VulkanError.missingEntryPoint("physical-device queries") }
        var count: UInt32 = 0
        var result = enumerateDevices(loader.instance, &count, nil)
        guard result == VK_SUCCESS else { throw VulkanError.call("vkEnumeratePhysicalDevices", result) }
        var handles = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        result = enumerateDevices(loader.instance, &count, &handles)
        guard result == VK_SUCCESS || result == VK_INCOMPLETE else {
            throw VulkanError.call("vkEnumeratePhysicalDevices", result)
        }
        var infos: [(handle: VkPhysicalDevice, info: DeviceInfo)] = []
        for handle in handles.prefix(Int(count)) {
            guard let handle else { continue }
            // a compute queue is required
            var familyCount: UInt32 = 0
            queues(handle, &familyCount, nil)
            var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
            queues(handle, &familyCount, &families)
            guard families.contains(where: { $0.queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }) else { continue }

            var subgroup = VkPhysicalDeviceSubgroupProperties()
            subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES
            var props = VkPhysicalDeviceProperties2()
            props.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
            withUnsafeMutablePointer(to: &subgroup) { sub in
                props.pNext = UnsafeMutableRawPointer(sub)
                properties2(handle, &props)
            }
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
            var mem = VkPhysicalDeviceMemoryProperties()
            memory(handle, &mem)

            let p = props.properties
            let name = withUnsafeBytes(of: p.deviceName) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let heaps = withUnsafeBytes(of: mem.memoryHeaps) { raw in
                Array(raw.bindMemory(to: VkMemoryHeap.self).prefix(Int(mem.memoryHeapCount)))
            }
            let deviceLocal = heaps.filter { $0.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 }
                .map(\.size).reduce(0, +)
            let kind: DeviceKind
            switch p.deviceType {
            case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: kind = .discrete
            case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: kind = .integrated
            case VK_PHYSICAL_DEVICE_TYPE_CPU: kind = .software
            default: kind = .other
            }
            func version(_ v: UInt32) -> String { "\(v >> 22).\((v >> 12) & 0x3FF).\(v & 0xFFF)" }
            let features16 = DeviceFeatures(
                fp16: float16Int8.shaderFloat16 != 0, int8Dot: float16Int8.shaderInt8 != 0,
                storage16Bit: storage16.storageBuffer16BitAccess != 0, subgroupSize: Int(subgroup.subgroupSize),
                maxBufferRange: Int(p.limits.maxStorageBufferRange))
            let heapText = heaps.map { "\($0.size >> 20) MiB\($0.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 ? " device-local" : "")" }
            infos.append((handle, DeviceInfo(
                id: "vulkan:\(infos.count)", name: name, kind: kind, memoryBytes: deviceLocal,
                computeUnits: Int(subgroup.subgroupSize),
                features: features16,
                details: [
                    "API \(version(p.apiVersion)), driver \(p.driverVersion)",
                    "memory heaps: " + heapText.joined(separator: ", "),
                    "subgroup size \(subgroup.subgroupSize); fp16 \(features16.fp16), int8 \(features16.int8Dot), "
                        + "16-bit storage \(features16.storage16Bit); max storage buffer range \(p.limits.maxStorageBufferRange) B",
                ])))
        }
        return infos
    }
}
