// A stable short hash of a string (the same on every run and host).

/// 20 hex digits derived from a string (FNV-1a, two ways), for container IDs derived from a
/// namespace path, as cnitool derives its own.
public func stableHash(_ s: String) -> String {
    var h1: UInt64 = 0xcbf2_9ce4_8422_2325
    var h2: UInt64 = 0x84222325cbf29ce4
    for b in s.utf8 {
        h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3
        h2 = (h2 &* 0x100_0000_01b3) ^ UInt64(b)
    }
    func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }
    return String((hex(h1) + hex(h2)).prefix(20))
}
