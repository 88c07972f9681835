import CVulkan
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `libvulkan.so.1` opened at run time and the instance-level entry points themis uses.
final class VulkanLoader: @unchecked Sendable {
    // Immutable after init; Vulkan instance-level queries are thread-safe.
    let instance: VkInstance
    private let library: UnsafeMutableRawPointer
    let getInstanceProcAddr: PFN_vkGetInstanceProcAddr

    init() throws {
        // THEMIS_VULKAN_LOADER names another loader file (tests use it to simulate a missing one).
        let path = ProcessInfo.processInfo.environment["THEMIS_VULKAN_LOADER"] ?? "libvulkan.so.1"
        guard let lib = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw VulkanError.loaderMissing(dlerror().map { String(cString: $0) } ?? path)
        }
        library = lib
        guard let sym = dlsym(lib, "vkGetInstanceProcAddr") else {
            dlclose(lib)
            throw VulkanError.missingEntryPoint("vkGetInstanceProcAddr")
        }
        getInstanceProcAddr = unsafeBitCast(sym, to: PFN_vkGetInstanceProcAddr.self)
        guard let create = unsafeBitCast(getInstanceProcAddr(nil, "vkCreateInstance"), to: PFN_vkCreateInstance?.self) else {
            dlclose(lib)
            throw VulkanError.missingEntryPoint("vkCreateInstance")
        }
        var created: VkInstance?
        let result: VkResult = "themis".withCString { name in
            var app = VkApplicationInfo()
            app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
            app.pApplicationName = name
            app.pEngineName = name
            app.apiVersion = (1 << 22) | (1 << 12)  // Vulkan 1.1: subgroup and 16-bit storage queries
            return withUnsafePointer(to: &app) { appPointer in
                var info = VkInstanceCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                info.pApplicationInfo = appPointer
                return create(&info, nil, &created)
            }
        }
        guard result == VK_SUCCESS, let instance = created else {
            dlclose(lib)
            throw VulkanError.call("vkCreateInstance", result)
        }
        self.instance = instance
    }

    deinit {
        if let destroy: PFN_vkDestroyInstance = function("vkDestroyInstance") { destroy(instance, nil) }
        dlclose(library)
    }

    /// An instance-level entry point, typed.
    func function<F>(_ name: String) -> F? {
        guard let f = getInstanceProcAddr(instance, name) else { return nil }
        return unsafeBitCast(f, to: F.self)
    }
}
