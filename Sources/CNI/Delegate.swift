/// Delegation to another plugin (the IPAM plugin named by `ipam.type`), as SPEC 1.1.0
/// describes: the delegate is found in CNI_PATH and exec'd with the same environment
/// (CNI_COMMAND set to the operation) and the same configuration on stdin.
///
/// Delegates that ship with this suite (host-local) are linked into the plugins that use
/// them. When the executable CNI_PATH resolves for a delegate type sits in the same
/// directory as the running plugin — i.e. it is our own build of it — the delegate runs
/// in-process instead of being exec'd: same code, same state files and locks, without a
/// second process start. Setting `SWIFTCNI_EXEC_DELEGATES=1` forces the exec path.
import Base

public enum Delegate {
    nonisolated(unsafe) public static var builtins: [String: any CNIPlugin.Type] = [:]
    /// Delegate types this process hands to a plugin of its own, whatever CNI_PATH holds (the
    /// overlay plugin's host-local, which its agent carries out).
    nonisolated(unsafe) public static var routed: [String: any CNIPlugin] = [:]

    public static func add(_ type: String, _ req: CNIRequest) throws -> CNIResult {
        guard let j = try invoke(type, .add, req) else {
            throw CNIError(.delegateFailed, "plugin \"\(type)\" returned no result for ADD")
        }
        do {
            return try CNIResult(json: j, path: "result of \(type)")
        } catch {
            throw CNIError(.delegateFailed, "plugin \"\(type)\" returned an unusable result: \(error.msg)")
        }
    }

    public static func del(_ type: String, _ req: CNIRequest) throws { _ = try invoke(type, .del, req) }
    public static func check(_ type: String, _ req: CNIRequest) throws { _ = try invoke(type, .check, req) }
    public static func gc(_ type: String, _ req: CNIRequest) throws { _ = try invoke(type, .gc, req) }
    public static func status(_ type: String, _ req: CNIRequest) throws { _ = try invoke(type, .status, req) }

    /// Where `type` resolves in CNI_PATH.
    public static func locate(_ type: String, path: [String]) throws(CNIError) -> String {
        guard !type.isEmpty, !type.contains("/") else {
            throw CNIError(.invalidConfig, "plugin type \"\(type)\" is not a valid plugin name")
        }
        guard let p = Exec.find(type, in: path) else {
            if path.isEmpty {
                throw CNIError(.invalidEnvironment, "CNI_PATH is not set: cannot find plugin \"\(type)\"")
            }
            throw CNIError(.delegateFailed, "failed to find plugin \"\(type)\" in CNI_PATH \(path.joined(separator: ":"))")
        }
        return p
    }

    nonisolated(unsafe) static var ownDirectory: String?? = nil

    static func runsInProcess(_ found: String) -> Bool {
        if Posix.getenv("SWIFTCNI_EXEC_DELEGATES") == "1" { return false }
        if ownDirectory == nil {
            ownDirectory = .some(Posix.executablePath().map { Posix.dirname(of: $0) })
        }
        guard let own = ownDirectory!, let real = Posix.realPath(found) else { return false }
        return Posix.dirname(of: real) == own
    }

    static func invoke(_ type: String, _ command: CNICommand, _ req: CNIRequest) throws -> JSON? {
        var sub = req
        sub.env.command = command
        if let r = routed[type] {
            do { return try CNIMain.dispatch(r, sub) } catch { throw CNIError.wrap(error) }
        }
        let found = try locate(type, path: req.env.path)
        if let builtin = builtins[type], runsInProcess(found) {
            do {
                return try CNIMain.dispatch(builtin.init(), sub)
            } catch {
                throw CNIError.wrap(error)
            }
        }
        let out: Exec.Output
        do {
            out = try Exec.run(found, environment: req.env.environmentBlock(command: command), stdin: req.configBytes)
        } catch {
            throw CNIError(.delegateFailed, "running plugin \"\(type)\" (\(found)): \(error)")
        }
        let text = out.stdout
        if out.status != 0 {
            if let j = try? JSON.parse(text), let e = CNIError.from(json: j) {
                throw e
            }
            let s = String(decoding: text.prefix(300), as: UTF8.self)
            throw CNIError(.delegateFailed, "plugin \"\(type)\" failed (\(command.rawValue)) with exit status \(out.status)\(s.isEmpty ? "" : ": " + s)")
        }
        if command != .add { return nil }
        do {
            return try JSON.parse(text)
        } catch {
            throw CNIError(.delegateFailed, "plugin \"\(type)\" printed invalid JSON for ADD: \(error)")
        }
    }
}
