/// The CNI error codes (SPEC 1.1.0 "Error codes") and the ones this suite adds (100+).
import Base

public struct CNIErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    // Spec codes.
    /// Incompatible CNI version.
    public static let incompatibleVersion = CNIErrorCode(rawValue: 1)
    /// Unsupported field in network configuration.
    public static let unsupportedField = CNIErrorCode(rawValue: 2)
    /// Container unknown or does not exist.
    public static let unknownContainer = CNIErrorCode(rawValue: 3)
    /// Invalid necessary environment variables (CNI_COMMAND, CNI_CONTAINERID, CNI_ARGS, ...).
    public static let invalidEnvironment = CNIErrorCode(rawValue: 4)
    /// I/O failure.
    public static let ioFailure = CNIErrorCode(rawValue: 5)
    /// Failed to decode content.
    public static let decodingFailure = CNIErrorCode(rawValue: 6)
    /// Invalid network config.
    public static let invalidConfig = CNIErrorCode(rawValue: 7)
    /// Try again later.
    public static let tryAgainLater = CNIErrorCode(rawValue: 11)
    /// STATUS: the plugin is not available (cannot service ADD).
    public static let notAvailable = CNIErrorCode(rawValue: 50)
    /// STATUS: the plugin is not available, existing containers may have limited connectivity.
    public static let limitedConnectivity = CNIErrorCode(rawValue: 51)

    // swiftcni codes (documented in README).
    /// A kernel operation (netlink, netns, sysctl, syscall) failed; the message names it and the errno.
    public static let kernel = CNIErrorCode(rawValue: 100)
    /// No address left to allocate in the configured ranges.
    public static let addressesExhausted = CNIErrorCode(rawValue: 101)
    /// A requested address is taken by another attachment.
    public static let addressInUse = CNIErrorCode(rawValue: 102)
    /// The interface name asked for already exists in the container.
    public static let interfaceExists = CNIErrorCode(rawValue: 103)
    /// A delegated plugin could not be found or run, or did not answer in CNI form.
    public static let delegateFailed = CNIErrorCode(rawValue: 104)
    /// CHECK found the attachment's state different from what ADD created.
    public static let checkFailed = CNIErrorCode(rawValue: 105)
    /// A host address that the configuration binds to does not exist on the host.
    public static let hostAddressMissing = CNIErrorCode(rawValue: 106)
    /// A resource (port, name) is already held by another attachment.
    public static let conflict = CNIErrorCode(rawValue: 107)
    /// Another table's forward chain drops by default and would drop the network's traffic.
    public static let hostFirewall = CNIErrorCode(rawValue: 108)
    /// The DNS server could not be started, refused a change, or serves another network namespace.
    public static let dnsServer = CNIErrorCode(rawValue: 109)
    /// etcd answered a request with an error (unreachable etcd is code 11).
    public static let etcd = CNIErrorCode(rawValue: 110)
    /// The overlay agent could not be started, stopped answering, or serves another network namespace.
    public static let overlayAgent = CNIErrorCode(rawValue: 111)
    /// Internal error (a bug): anything not classified above.
    public static let `internal` = CNIErrorCode(rawValue: 999)

    public var description: String { String(rawValue) }

    /// Every code the suite uses, declared above and nowhere else.
    public static let all: [CNIErrorCode] = [
        .incompatibleVersion, .unsupportedField, .unknownContainer, .invalidEnvironment, .ioFailure, .decodingFailure,
        .invalidConfig, .tryAgainLater, .notAvailable, .limitedConnectivity, .kernel, .addressesExhausted, .addressInUse,
        .interfaceExists, .delegateFailed, .checkFailed, .hostAddressMissing, .conflict, .hostFirewall, .dnsServer, .etcd,
        .overlayAgent, .internal,
    ]
}

/// An error as the CNI contract reports it: `{"cniVersion","code","msg","details"}`.
public struct CNIError: Error, Equatable, CustomStringConvertible, Sendable {
    public var code: CNIErrorCode
    public var msg: String
    public var details: String

    public init(_ code: CNIErrorCode, _ msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    public var description: String {
        details.isEmpty ? "CNI error \(code.rawValue): \(msg)" : "CNI error \(code.rawValue): \(msg) (\(details))"
    }

    /// The error JSON for the given CNI version.
    public func json(cniVersion: String) -> JSON {
        var o = JSONObject()
        o["cniVersion"] = .string(cniVersion)
        o["code"] = .int(code.rawValue)
        o["msg"] = .string(msg)
        if !details.isEmpty { o["details"] = .string(details) }
        return .object(o)
    }

    /// Parses an error object printed by a plugin.
    public static func from(json: JSON) -> CNIError? {
        guard case .object(let o) = json, let code = o["code"]?.intValue else { return nil }
        return CNIError(CNIErrorCode(rawValue: code), o["msg"]?.stringValue ?? "", details: o["details"]?.stringValue ?? "")
    }
}
