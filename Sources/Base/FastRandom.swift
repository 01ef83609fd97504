// A small, fast pseudo-random generator (xorshift64): shuffling DNS answers, seeded fuzzing.

/// xorshift64: fast, not for anything secret.
public struct FastRandom: RandomNumberGenerator, Sendable {
    var s: UInt64
    /// Seeded from the system generator.
    public init() {
        var g = SystemRandomNumberGenerator()
        s = g.next() | 1
    }
    /// A fixed seed (tests, reproducible fuzzing).
    public init(seed: UInt64) { s = seed | 1 }

    public mutating func next() -> UInt64 {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return s
    }
}
