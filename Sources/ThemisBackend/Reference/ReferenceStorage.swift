/// What a `ReferenceBackend` tensor holds: f32 values, or the raw GGUF bytes of a weight.
///
/// Not thread-safe: a backend is used from one task at a time (the `Backend` contract).
final class ReferenceStorage {
    /// Row-major f32 values (activations and f32 weights); empty for other weights.
    var floats: [Float]
    /// Row-major GGUF bytes of a non-f32 weight; empty for f32 tensors.
    let bytes: [UInt8]

    init(floats: [Float]) {
        self.floats = floats
        self.bytes = []
    }

    init(bytes: [UInt8]) {
        self.floats = []
        self.bytes = bytes
    }
}
