import CVulkan

/// A compute pipeline made from one embedded SPIR-V module with its specialisation constants.
struct Kernel {
    let pipeline: VkPipeline
    let layout: VkPipelineLayout
    let bindings: Int
    /// Invocations per workgroup along x (specialisation constant 0).
    let workgroupSize: Int
}

/// Pipelines, their layouts and descriptor sets, each created once and reused.
///
/// Every kernel binds only storage buffers (binding i = i-th buffer) and takes up to 128 bytes
/// of push constants, so a layout depends only on the number of bindings. Tensors bind the whole
/// piece of memory that holds them and pass their offsets as push constants, so a descriptor set
/// depends only on which pieces a kernel reads and writes: the sets of a forward pass are made on
/// the first pass and found again on every later one.
final class PipelineCache {
    private let device: VulkanDevice
    private var setLayouts: [Int: VkDescriptorSetLayout] = [:]
    private var pipelineLayouts: [Int: VkPipelineLayout] = [:]
    private var kernels: [String: Kernel] = [:]
    private var pools: [VkDescriptorPool] = []
    private var sets: [[BufferRange]: VkDescriptorSet] = [:]
    static let pushConstantBytes = 128
    private static let setsPerPool = 1024

    init(device: VulkanDevice) { self.device = device }

    /// Pipelines and descriptor sets made so far.
    var counts: (pipelines: Int, descriptorSets: Int) { (kernels.count, sets.count) }

    deinit {
        let fn = device.fn, d = device.handle
        for k in kernels.values { fn.destroyPipeline(d, k.pipeline, nil) }
        for l in pipelineLayouts.values { fn.destroyPipelineLayout(d, l, nil) }
        for l in setLayouts.values { fn.destroyDescriptorSetLayout(d, l, nil) }
        for p in pools { fn.destroyDescriptorPool(d, p, nil) }
    }

    /// The pipeline of module `name` with specialisation constants `constants` (constant i = value
    /// i; constant 0 is the workgroup size), made on first use.
    func kernel(_ name: String, bindings: Int, constants: [UInt32]) throws -> Kernel {
        let key = name + constants.map { "_\($0)" }.joined()
        if let k = kernels[key] { return k }
        guard let words = ShaderLibrary.words(name) else {
            throw VulkanError.tooLarge("shader module \(name) is not embedded in this build")
        }
        let fn = device.fn, d = device.handle
        let layout = try pipelineLayout(bindings: bindings)
        var module: VkShaderModule?
        try words.withUnsafeBufferPointer { code in
            var info = VkShaderModuleCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            info.codeSize = code.count * 4
            info.pCode = code.baseAddress
            try check(fn.createShaderModule(d, &info, nil, &module), "vkCreateShaderModule(\(name))")
        }
        defer { fn.destroyShaderModule(d, module, nil) }
        var entries = constants.indices.map {
            VkSpecializationMapEntry(constantID: UInt32($0), offset: UInt32(4 * $0), size: 4)
        }
        var pipeline: VkPipeline?
        try constants.withUnsafeBytes { data in
            try entries.withUnsafeMutableBufferPointer { entries in
                var specialization = VkSpecializationInfo(
                    mapEntryCount: UInt32(entries.count), pMapEntries: entries.baseAddress,
                    dataSize: data.count, pData: data.baseAddress)
                try "main".withCString { entry in
                    try withUnsafePointer(to: &specialization) { spec in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = module
                        stage.pName = entry
                        stage.pSpecializationInfo = spec
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage = stage
                        info.layout = layout
                        try check(fn.createComputePipelines(d, nil, 1, &info, nil, &pipeline),
                                  "vkCreateComputePipelines(\(name))")
                    }
                }
            }
        }
        let k = Kernel(pipeline: pipeline!, layout: layout, bindings: bindings, workgroupSize: Int(constants[0]))
        kernels[key] = k
        return k
    }

    /// A descriptor set binding `ranges` in order, made on first use.
    func descriptorSet(_ ranges: [BufferRange]) throws -> VkDescriptorSet {
        if let s = sets[ranges] { return s }
        let fn = device.fn, d = device.handle
        var layout: VkDescriptorSetLayout? = try setLayout(bindings: ranges.count)
        var set: VkDescriptorSet?
        for attempt in 0..<2 {
            if attempt == 1 || pools.isEmpty { pools.append(try makePool()) }
            var info = VkDescriptorSetAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            info.descriptorPool = pools.last
            info.descriptorSetCount = 1
            let result = withUnsafePointer(to: &layout) { layouts in
                info.pSetLayouts = layouts
                return fn.allocateDescriptorSets(d, &info, &set)
            }
            if result == VK_SUCCESS { break }
            // a full pool: one more try in a new pool
            guard attempt == 0, result == VK_ERROR_OUT_OF_POOL_MEMORY || result == VK_ERROR_FRAGMENTED_POOL else {
                throw VulkanError.call("vkAllocateDescriptorSets", result)
            }
        }
        var infos = ranges.map {
            VkDescriptorBufferInfo(buffer: $0.buffer, offset: VkDeviceSize($0.offset), range: VkDeviceSize($0.bytes))
        }
        infos.withUnsafeMutableBufferPointer { infos in
            var writes = (0..<ranges.count).map { i -> VkWriteDescriptorSet in
                var w = VkWriteDescriptorSet()
                w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                w.dstSet = set
                w.dstBinding = UInt32(i)
                w.descriptorCount = 1
                w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                w.pBufferInfo = UnsafePointer(infos.baseAddress! + i)
                return w
            }
            fn.updateDescriptorSets(d, UInt32(writes.count), &writes, 0, nil)
        }
        sets[ranges] = set!
        return set!
    }

    private func makePool() throws -> VkDescriptorPool {
        var size = VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: UInt32(4 * Self.setsPerPool))
        var info = VkDescriptorPoolCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
        info.maxSets = UInt32(Self.setsPerPool)
        info.poolSizeCount = 1
        var pool: VkDescriptorPool?
        try withUnsafePointer(to: &size) { sizes in
            info.pPoolSizes = sizes
            try check(device.fn.createDescriptorPool(device.handle, &info, nil, &pool), "vkCreateDescriptorPool")
        }
        return pool!
    }

    private func setLayout(bindings: Int) throws -> VkDescriptorSetLayout {
        if let l = setLayouts[bindings] { return l }
        var entries = (0..<bindings).map {
            VkDescriptorSetLayoutBinding(
                binding: UInt32($0), descriptorType: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: 1,
                stageFlags: VK_SHADER_STAGE_COMPUTE_BIT.rawValue, pImmutableSamplers: nil)
        }
        var layout: VkDescriptorSetLayout?
        try entries.withUnsafeMutableBufferPointer { entries in
            var info = VkDescriptorSetLayoutCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
            info.bindingCount = UInt32(entries.count)
            info.pBindings = UnsafePointer(entries.baseAddress)
            try check(device.fn.createDescriptorSetLayout(device.handle, &info, nil, &layout), "vkCreateDescriptorSetLayout")
        }
        setLayouts[bindings] = layout!
        return layout!
    }

    private func pipelineLayout(bindings: Int) throws -> VkPipelineLayout {
        if let l = pipelineLayouts[bindings] { return l }
        var setLayout: VkDescriptorSetLayout? = try self.setLayout(bindings: bindings)
        var push = VkPushConstantRange(
            stageFlags: VK_SHADER_STAGE_COMPUTE_BIT.rawValue, offset: 0, size: UInt32(Self.pushConstantBytes))
        var layout: VkPipelineLayout?
        try withUnsafePointer(to: &setLayout) { sets in
            try withUnsafePointer(to: &push) { ranges in
                var info = VkPipelineLayoutCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
                info.setLayoutCount = 1
                info.pSetLayouts = sets
                info.pushConstantRangeCount = 1
                info.pPushConstantRanges = ranges
                try check(device.fn.createPipelineLayout(device.handle, &info, nil, &layout), "vkCreatePipelineLayout")
            }
        }
        pipelineLayouts[bindings] = layout!
        return layout!
    }
}
