/// CNI spec versions this suite speaks.
import Base

public enum CNIVersion {
    public static let current = "1.1.0"
    public static let supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

    public static func isSupported(_ v: String) -> Bool { supported.contains(v) }

    /// (major, minor, patch) of a version string, nil if malformed.
    public static func parse(_ v: String) -> (Int, Int, Int)? {
        let p = v.split(separator: ".", omittingEmptySubsequences: false)
        guard p.count == 3, let a = Int(p[0]), let b = Int(p[1]), let c = Int(p[2]), a >= 0, b >= 0, c >= 0 else {
            return nil
        }
        return (a, b, c)
    }

    /// a >= b; false when either is malformed.
    public static func atLeast(_ a: String, _ b: String) -> Bool {
        guard let x = parse(a), let y = parse(b) else { return false }
        return x >= y
    }

    /// Results of this version carry `"version"` in each IP config (before 1.0.0).
    public static func hasIPVersionField(_ v: String) -> Bool { !atLeast(v, "1.0.0") }

    /// The highest version in `candidates` that we support (for `cniVersions`).
    public static func highestSupported(of candidates: [String]) -> String? {
        candidates.filter(isSupported).max { (parse($0) ?? (0, 0, 0)) < (parse($1) ?? (0, 0, 0)) }
    }

    /// The VERSION answer.
    public static func versionInfo(answering requested: String?) -> JSON {
        let v = requested.flatMap { isSupported($0) ? $0 : nil } ?? current
        var o = JSONObject()
        o["cniVersion"] = .string(v)
        o["supportedVersions"] = .array(supported.map { .string($0) })
        return .object(o)
    }
}
