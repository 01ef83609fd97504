import Base
import CNI
import IPAM

/// The reference host-local store: `<dataDir>/<network>/<ip>` files holding
/// `containerID\r\nifname`, `last_reserved_ip.<n>`, an flock on `lock`. Existing state
/// written by the reference plugin carries over both ways.
///
/// To keep ADD and DEL independent of how many addresses are allocated, an attachment index
/// lives beside it (`<dataDir>/.swiftcni/<network>/<containerID>:<ifname>` listing the
/// attachment's addresses). The index is a hint: every use is verified against the address
/// files, and when it is missing (state written by another implementation) the directory is
/// scanned as the reference does.
public final class FileStore: AllocationStore {
    public static let defaultDataDir = "/var/lib/cni/networks"
    static let lineBreak = "\r\n"

    public let directory: String
    let indexDirectory: String
    var lock: FileLock?
    var indexDirReady = false

    public init(network: String, dataDir: String?) throws {
        let base = (dataDir?.isEmpty == false ? dataDir! : FileStore.defaultDataDir)
        directory = Posix.join(base, network)
        indexDirectory = Posix.join(Posix.join(base, ".swiftcni"), network)
        try Posix.makeDirectories(directory)
    }

    public func withLock<T>(_ body: () throws -> T) throws -> T {
        if lock != nil { return try body() }
        lock = try FileLock(path: Posix.join(directory, "lock"))
        defer {
            lock?.unlock()
            lock = nil
        }
        return try body()
    }

    func path(_ ip: IPAddress) -> String { Posix.join(directory, ip.description) }

    static func content(_ o: Attachment) -> [UInt8] {
        Array((o.containerID.trimmingWhitespace() + lineBreak + o.ifname).utf8)
    }

    /// Parses an address file: `id\r\nifname`, or just `id` as older versions wrote.
    static func parseOwner(_ bytes: [UInt8]) -> Attachment {
        func trim(_ b: ArraySlice<UInt8>) -> String {
            var s = b.startIndex, e = b.endIndex
            while s < e, b[s] == 0x20 || b[s] == 0x0A || b[s] == 0x0D || b[s] == 0x09 { s += 1 }
            while e > s, b[e - 1] == 0x20 || b[e - 1] == 0x0A || b[e - 1] == 0x0D || b[e - 1] == 0x09 { e -= 1 }
            return String(decoding: b[s..<e], as: UTF8.self)
        }
        if let nl = bytes.firstIndex(of: 0x0A) {
            return Attachment(containerID: trim(bytes[..<nl]), ifname: trim(bytes[(nl + 1)...]))
        }
        return Attachment(containerID: trim(bytes[...]), ifname: "")
    }

    /// Whether a file's owner is `o` (a legacy id-only file matches any ifname of that id).
    static func matches(_ found: Attachment, _ o: Attachment) -> Bool {
        found.containerID == o.containerID && (found.ifname == o.ifname || found.ifname.isEmpty)
    }

    public func reserve(_ ip: IPAddress, owner: Attachment, rangeSet: Int) throws -> Bool {
        let target = path(ip)
        if Posix.exists(target) { return false }
        // Write the whole file under a temporary name, then link it into place: the address
        // file appears complete or not at all, and link(2) fails if the address is taken.
        PhaseTrace.mark("reserve start")
        let tmp = Posix.join(directory, ".reserve-\(Posix.processID)")
        try Posix.writeFile(tmp, FileStore.content(owner), sync: true)
        defer { _ = try? Posix.remove(tmp) }
        PhaseTrace.mark("tmp written")
        if !(try Posix.link(tmp, target)) { return false }
        PhaseTrace.mark("linked")
        // A hint (the reference writes it in place too); rewritten without truncating to
        // zero, which would make ext4 flush it synchronously.
        try? Posix.overwrite(Posix.join(directory, "last_reserved_ip.\(rangeSet)"), Array(ip.description.utf8))
        try addToIndex(owner, ip)
        PhaseTrace.mark("indexed")
        return true
    }

    public func lastReserved(rangeSet: Int) throws -> IPAddress? {
        guard let t = try Posix.readText(Posix.join(directory, "last_reserved_ip.\(rangeSet)")) else { return nil }
        return IPAddress(t.trimmingWhitespace())
    }

    public func owner(of ip: IPAddress) throws -> Attachment? {
        try Posix.readFile(path(ip)).map(FileStore.parseOwner)
    }

    // MARK: index

    func indexPath(_ o: Attachment) -> String {
        Posix.join(indexDirectory, o.containerID + ":" + o.ifname)
    }

    func readIndex(_ o: Attachment) -> [IPAddress]? {
        guard let t = try? Posix.readText(indexPath(o)) else { return nil }
        return t.split(separator: "\n").compactMap { IPAddress(String($0)) }
    }

    func addToIndex(_ o: Attachment, _ ip: IPAddress) throws {
        if !indexDirReady {
            try Posix.makeDirectories(indexDirectory)
            indexDirReady = true
        }
        var ips = readIndex(o) ?? []
        if !ips.contains(ip) { ips.append(ip) }
        try Posix.writeFileAtomically(indexPath(o), Array(ips.map(\.description).joined(separator: "\n").utf8), sync: false)
    }

    /// Addresses held by `o`. With `thorough`, an attachment missing from the index is
    /// looked up by scanning every address file (state written by another implementation);
    /// without it, only the index is consulted (constant time, used on the ADD path).
    public func addresses(of o: Attachment, thorough: Bool) throws -> [IPAddress] {
        if let hinted = readIndex(o) {
            var out: [IPAddress] = []
            for ip in hinted {
                if let found = try owner(of: ip), FileStore.matches(found, o) { out.append(ip) }
            }
            return out
        }
        if !thorough { return [] }
        return try allocations().filter { FileStore.matches($0.1, o) }.map(\.0)
    }


    @discardableResult
    public func release(_ o: Attachment) throws -> [IPAddress] {
        var released: [IPAddress] = []
        let candidates: [IPAddress]
        if let hinted = readIndex(o) {
            candidates = hinted
        } else {
            candidates = try allocations().filter { FileStore.matches($0.1, o) }.map(\.0)
        }
        for ip in candidates {
            if let found = try owner(of: ip), FileStore.matches(found, o) {
                try Posix.remove(path(ip))
                released.append(ip)
            }
        }
        try Posix.remove(indexPath(o))
        // Under the lock every writer takes: what a writer killed half-way left is garbage.
        try removeLeftovers()
        return released
    }

    public func allocations() throws -> [(IPAddress, Attachment)] {
        var out: [(IPAddress, Attachment)] = []
        for name in try Posix.listDirectory(directory) ?? [] {
            guard let ip = IPAddress(name), let bytes = try Posix.readFile(Posix.join(directory, name)) else { continue }
            out.append((ip, FileStore.parseOwner(bytes)))
        }
        return out
    }

    /// How many addresses are allocated (directory listing only).
    public func allocationCount() throws -> Int {
        (try Posix.listDirectory(directory) ?? []).filter { IPAddress($0) != nil }.count
    }

    public func release(ip: IPAddress) throws {
        let o = try owner(of: ip)
        try Posix.remove(path(ip))
        if let o, var ips = readIndex(o) {
            ips.removeAll { $0 == ip }
            if ips.isEmpty {
                try Posix.remove(indexPath(o))
            } else {
                try Posix.writeFileAtomically(indexPath(o), Array(ips.map(\.description).joined(separator: "\n").utf8), sync: false)
            }
        }
    }

    /// Temporary files of writers that died half-way (killed between writing and renaming);
    /// callers hold the lock, so no live writer owns one.
    public func removeLeftovers() throws {
        for name in try Posix.listDirectory(directory) ?? [] where name.hasPrefix(".reserve-") {
            try Posix.remove(Posix.join(directory, name))
        }
        try Posix.removeTemporaries(in: directory)
        try Posix.removeTemporaries(in: indexDirectory)
    }

    public func maintenance() throws {
        try pruneIndex()
        try removeLeftovers()
    }

    /// Index entries whose attachment holds no address any more.
    public func pruneIndex() throws {
        for name in try Posix.listDirectory(indexDirectory) ?? [] where Posix.temporaryTarget(name) == nil {
            guard let colon = name.lastIndex(of: ":") else { continue }
            let o = Attachment(containerID: String(name[..<colon]), ifname: String(name[name.index(after: colon)...]))
            if try addresses(of: o, thorough: true).isEmpty { try Posix.remove(indexPath(o)) }
        }
    }
}
