import CVulkan

/// The device-level Vulkan entry points the backend calls, looked up once through
/// `vkGetDeviceProcAddr` (no prototypes are linked: the loader is opened at run time).
struct DeviceFunctions {
    let destroyDevice: PFN_vkDestroyDevice
    let getDeviceQueue: PFN_vkGetDeviceQueue
    let deviceWaitIdle: PFN_vkDeviceWaitIdle
    let createBuffer: PFN_vkCreateBuffer
    let destroyBuffer: PFN_vkDestroyBuffer
    let getBufferMemoryRequirements: PFN_vkGetBufferMemoryRequirements
    let allocateMemory: PFN_vkAllocateMemory
    let freeMemory: PFN_vkFreeMemory
    let bindBufferMemory: PFN_vkBindBufferMemory
    let mapMemory: PFN_vkMapMemory
    let unmapMemory: PFN_vkUnmapMemory
    let createShaderModule: PFN_vkCreateShaderModule
    let destroyShaderModule: PFN_vkDestroyShaderModule
    let createDescriptorSetLayout: PFN_vkCreateDescriptorSetLayout
    let destroyDescriptorSetLayout: PFN_vkDestroyDescriptorSetLayout
    let createPipelineLayout: PFN_vkCreatePipelineLayout
    let destroyPipelineLayout: PFN_vkDestroyPipelineLayout
    let createComputePipelines: PFN_vkCreateComputePipelines
    let destroyPipeline: PFN_vkDestroyPipeline
    let createDescriptorPool: PFN_vkCreateDescriptorPool
    let destroyDescriptorPool: PFN_vkDestroyDescriptorPool
    let allocateDescriptorSets: PFN_vkAllocateDescriptorSets
    let updateDescriptorSets: PFN_vkUpdateDescriptorSets
    let createCommandPool: PFN_vkCreateCommandPool
    let destroyCommandPool: PFN_vkDestroyCommandPool
    let allocateCommandBuffers: PFN_vkAllocateCommandBuffers
    let beginCommandBuffer: PFN_vkBeginCommandBuffer
    let endCommandBuffer: PFN_vkEndCommandBuffer
    let resetCommandBuffer: PFN_vkResetCommandBuffer
    let createFence: PFN_vkCreateFence
    let destroyFence: PFN_vkDestroyFence
    let resetFences: PFN_vkResetFences
    let waitForFences: PFN_vkWaitForFences
    let queueSubmit: PFN_vkQueueSubmit
    let cmdBindPipeline: PFN_vkCmdBindPipeline
    let cmdBindDescriptorSets: PFN_vkCmdBindDescriptorSets
    let cmdPushConstants: PFN_vkCmdPushConstants
    let cmdDispatch: PFN_vkCmdDispatch
    let cmdPipelineBarrier: PFN_vkCmdPipelineBarrier
    let cmdCopyBuffer: PFN_vkCmdCopyBuffer
    let cmdFillBuffer: PFN_vkCmdFillBuffer

    init(device: VkDevice, getDeviceProcAddr: PFN_vkGetDeviceProcAddr) throws {
        func load<F>(_ name: String) throws -> F {
            guard let f = getDeviceProcAddr(device, name) else { throw VulkanError.missingEntryPoint(name) }
            return unsafeBitCast(f, to: F.self)
        }
        destroyDevice = try load("vkDestroyDevice")
        getDeviceQueue = try load("vkGetDeviceQueue")
        deviceWaitIdle = try load("vkDeviceWaitIdle")
        createBuffer = try load("vkCreateBuffer")
        destroyBuffer = try load("vkDestroyBuffer")
        getBufferMemoryRequirements = try load("vkGetBufferMemoryRequirements")
        allocateMemory = try load("vkAllocateMemory")
        freeMemory = try load("vkFreeMemory")
        bindBufferMemory = try load("vkBindBufferMemory")
        mapMemory = try load("vkMapMemory")
        unmapMemory = try load("vkUnmapMemory")
        createShaderModule = try load("vkCreateShaderModule")
        destroyShaderModule = try load("vkDestroyShaderModule")
        createDescriptorSetLayout = try load("vkCreateDescriptorSetLayout")
        destroyDescriptorSetLayout = try load("vkDestroyDescriptorSetLayout")
        createPipelineLayout = try load("vkCreatePipelineLayout")
        destroyPipelineLayout = try load("vkDestroyPipelineLayout")
        createComputePipelines = try load("vkCreateComputePipelines")
        destroyPipeline = try load("vkDestroyPipeline")
        createDescriptorPool = try load("vkCreateDescriptorPool")
        destroyDescriptorPool = try load("vkDestroyDescriptorPool")
        allocateDescriptorSets = try load("vkAllocateDescriptorSets")
        updateDescriptorSets = try load("vkUpdateDescriptorSets")
        createCommandPool = try load("vkCreateCommandPool")
        destroyCommandPool = try load("vkDestroyCommandPool")
        allocateCommandBuffers = try load("vkAllocateCommandBuffers")
        beginCommandBuffer = try load("vkBeginCommandBuffer")
        endCommandBuffer = try load("vkEndCommandBuffer")
        resetCommandBuffer = try load("vkResetCommandBuffer")
        createFence = try load("vkCreateFence")
        destroyFence = try load("vkDestroyFence")
        resetFences = try load("vkResetFences")
        waitForFences = try load("vkWaitForFences")
        queueSubmit = try load("vkQueueSubmit")
        cmdBindPipeline = try load("vkCmdBindPipeline")
        cmdBindDescriptorSets = try load("vkCmdBindDescriptorSets")
        cmdPushConstants = try load("vkCmdPushConstants")
        cmdDispatch = try load("vkCmdDispatch")
        cmdPipelineBarrier = try load("vkCmdPipelineBarrier")
        cmdCopyBuffer = try load("vkCmdCopyBuffer")
        cmdFillBuffer = try load("vkCmdFillBuffer")
    }
}

/// `result` as a thrown error unless it is `VK_SUCCESS`.
@inline(__always)
func check(_ result: VkResult, _ call: String) throws {
    guard result == VK_SUCCESS else { throw VulkanError.call(call, result) }
}
