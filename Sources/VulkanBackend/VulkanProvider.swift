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
        let vk = try VulkanDevice(loader: loader, physical: found.device, info: found.info)
        return try VulkanBackend(device: vk, subgroups: subgroups, pieceLimit: pieceLimit, roundDecodeActivations: roundDecodeActivations)
    }

    /// The physical devices with a compute queue, in `vulkan:N` order.
    static func enumerate(_ loader: VulkanLoader) throws -> [(device: PhysicalDevice, info: DeviceInfo)] {
        guard let enumerateDevices: PFN_vkEnumeratePhysicalDevices = loader.function("vkEnumeratePhysicalDevices") else {
            throw VulkanError.missingEntryPoint("vkEnumeratePhysicalDevices")
        }
        var count: UInt32 = 0
        var result = enumerateDevices(loader.instance, &count, nil)
        guard result == VK_SUCCESS else { throw VulkanError.call("vkEnumeratePhysicalDevices", result) }
        var handles = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        result = enumerateDevices(loader.instance, &count, &handles)
        guard result == VK_SUCCESS || result == VK_INCOMPLETE else {
            throw VulkanError.call("vkEnumeratePhysicalDevices", result)
        }
        var found: [(device: PhysicalDevice, info: DeviceInfo)] = []
        for handle in handles.prefix(Int(count)).compactMap({ $0 }) {
            let device = try PhysicalDevice(loader: loader, handle: handle)
            guard device.hasComputeQueue else { continue }
            found.append((device, device.info(index: found.count)))
        }
        return found
    }
}
