import Foundation

extension Array {
    /// `map` on every core, results in the elements' order: for pure CPU work over many independent elements (decoding
    /// thousands of manifests before a restore can start). Each element is transformed exactly once; if any transform
    /// throws, the error of the first such element (in array order) is thrown. Never use it for blocking I/O on a
    /// database connection: those run on their own threads.
    func concurrentMap<T>(_ transform: (Element) throws -> T) throws -> [T] {
        guard count > 1 else { return try map(transform) }
        let chunks = Swift.min(count, ProcessInfo.processInfo.activeProcessorCount * 4)
        var results = [Result<T, any Error>?](repeating: nil, count: count)
        withoutActuallyEscaping(transform) { transform in
            nonisolated(unsafe) let transform = transform
            results.withUnsafeMutableBufferPointer { slots in
                nonisolated(unsafe) let slots = slots
                self.withUnsafeBufferPointer { elements in
                    nonisolated(unsafe) let elements = elements
                    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                        // Chunk k takes elements k, k + chunks, k + 2·chunks, …: each slot is written by one chunk only.
                        var index = chunk
                        while index < elements.count {
                            slots[index] = Result { try transform(elements[index]) }
                            index += chunks
                        }
                    }
                }
            }
        }
        return try results.map { try $0!.get() }
    }
}
