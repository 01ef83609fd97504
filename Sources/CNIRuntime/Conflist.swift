import Base
import CNI
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A network configuration list (`.conflist`), or a single-plugin `.conf`/`.json` promoted
/// to a list, as libcni loads them.
public struct Conflist {
    public var name: String
    public var cniVersion: String
    public var disableCheck: Bool
    public var disableGC: Bool
    public var plugins: [JSONObject]
    /// The file's bytes (cached with each ADD, as libcni does).
    public var bytes: [UInt8]
    public var path: String

    public enum LoadError: Error, CustomStringConvertible {
        case notFound(String, String)
        case invalid(String, String)
        public var description: String {
            switch self {
            case .notFound(let n, let d): return "no network named \"\(n)\" in \(d)"
            case .invalid(let p, let why): return "\(p): \(why)"
            }
        }
    }

    public init(bytes: [UInt8], path: String) throws {
        self.bytes = bytes
        self.path = path
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { throw LoadError.invalid(path, "\(error)") }
        guard case .object(let o) = json else { throw LoadError.invalid(path, "not a JSON object") }
        guard let n = o["name"]?.stringValue, !n.isEmpty else { throw LoadError.invalid(path, "\"name\" is missing") }
        name = n
        disableCheck = o["disableCheck"]?.boolValue ?? false
        disableGC = o["disableGC"]?.boolValue ?? false
        // cniVersions (1.1.0): the highest listed version we speak; else cniVersion.
        if let list = o["cniVersions"]?.arrayValue {
            let vs = list.compactMap(\.stringValue)
            guard let v = CNIVersion.highestSupported(of: vs) else {
                throw LoadError.invalid(path, "none of \"cniVersions\" \(vs) is supported (\(CNIVersion.supported.joined(separator: ", ")))")
            }
            cniVersion = v
        } else {
            cniVersion = o["cniVersion"]?.stringValue ?? ""
        }
        if let ps = o["plugins"] {
            guard case .array(let arr) = ps, !arr.isEmpty else {
                throw LoadError.invalid(path, "\"plugins\" must be a non-empty array")
            }
            plugins = []
            for (i, p) in arr.enumerated() {
                guard case .object(let po) = p else { throw LoadError.invalid(path, "plugins[\(i)] is not an object") }
                guard let t = po["type"]?.stringValue, !t.isEmpty else {
                    throw LoadError.invalid(path, "plugins[\(i)] has no \"type\"")
                }
                plugins.append(po)
            }
        } else {
            // A single plugin configuration.
            guard o["type"]?.stringValue?.isEmpty == false else {
                throw LoadError.invalid(path, "neither \"plugins\" nor \"type\" is set")
            }
            plugins = [o]
        }
    }

    /// Finds the network `name` in `dir` (conflists first, then .conf/.json, sorted by file name).
    public static func load(name: String, dir: String) throws -> Conflist {
        // The usual file name first (a scan of every file otherwise, as libcni does).
        let direct = Posix.join(dir, name + ".conflist")
        if let b = try? Posix.readFile(direct), let c = try? Conflist(bytes: b, path: direct), c.name == name { return c }
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: dir) else {
            throw LoadError.notFound(name, dir)
        }
        let sorted = entries.sorted()
        for ext in [[".conflist"], [".conf", ".json"]] {
            for f in sorted where ext.contains(where: { f.hasSuffix($0) }) {
                let p = Posix.join(dir, f)
                guard let d = fm.contents(atPath: p) else { continue }
                guard let c = try? Conflist(bytes: Array(d), path: p) else { continue }
                if c.name == name { return c }
            }
        }
        throw LoadError.notFound(name, dir)
    }

    /// Every loadable network in `dir`.
    public static func all(dir: String) -> [Conflist] {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: dir) else { return [] }
        var seen = Set<String>()
        var out: [Conflist] = []
        for ext in [[".conflist"], [".conf", ".json"]] {
            for f in entries.sorted() where ext.contains(where: { f.hasSuffix($0) }) {
                let p = Posix.join(dir, f)
                guard let d = fm.contents(atPath: p), let c = try? Conflist(bytes: Array(d), path: p),
                      !seen.contains(c.name) else { continue }
                seen.insert(c.name)
                out.append(c)
            }
        }
        return out
    }
}
