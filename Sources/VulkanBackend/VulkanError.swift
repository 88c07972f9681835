import CVulkan

/// Why Vulkan could not be used.
public enum VulkanError: Error, CustomStringConvertible {
    case loaderMissing(String)
    case missingEntryPoint(String)
    case call(String, VkResult)
    case outOfMemory(bytes: Int, device: String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case .loaderMissing(let detail): return "Vulkan loader not available (\(detail))"
        case .missingEntryPoint(let name): return "Vulkan entry point \(name) not found"
        case .call(let name, let result): return "\(name) failed: \(Self.name(of: result))"
        case .outOfMemory(let bytes, let device):
            return "out of device memory: \(bytes >> 20) MiB more could not be allocated on \(device)"
        case .tooLarge(let detail): return detail
        }
    }

    /// The spelling of common results (the raw value for others).
    static func name(of result: VkResult) -> String {
        switch result {
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver found)"
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED"
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY"
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY"
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT"
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT"
        default: return "VkResult \(result.rawValue)"
        }
    }
}
