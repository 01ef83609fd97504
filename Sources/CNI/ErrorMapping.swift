// The one mapping of every module's errors to the contract's codes and messages. Modules
// below the contract (Base, Netlink, Firewall, DNS, Etcd) throw their own typed errors and
// say what kind of failure each is (`ClassifiedError`); here each kind gets its code, and
// the message its contract wording. Errors that are already `CNIError`s pass through;
// anything else is a bug (999).

import Base

extension CNIErrorCode {
    /// The code of a kind of failure.
    public static func of(_ kind: FailureKind) -> CNIErrorCode {
        switch kind {
        case .io: return .ioFailure
        case .kernel: return .kernel
        case .namespaceMissing: return .unknownContainer
        case .notANamespace: return .invalidEnvironment
        case .malformed: return .decodingFailure
        case .invalidArgument: return .invalidConfig
        case .conflict: return .conflict
        case .hostAddressMissing: return .hostAddressMissing
        case .hostFirewall: return .hostFirewall
        case .differs: return .checkFailed
        case .daemon(.dnsServer): return .dnsServer
        case .daemon(.overlayAgent): return .overlayAgent
        case .storeFailed: return .etcd
        case .unavailable: return .tryAgainLater
        }
    }
}

extension CNIError {
    /// The contract's form of `error`: a CNIError unchanged, a classified error with its
    /// kind's code, anything else with `code` (a bug, by default); `context` goes first in
    /// the message.
    public static func wrap(_ error: any Error, code: CNIErrorCode = .internal, context: String? = nil) -> CNIError {
        var e: CNIError
        if let c = error as? CNIError {
            e = c
        } else if let c = error as? any ClassifiedError {
            e = CNIError(.of(c.kind), message(c))
        } else {
            e = CNIError(code, String(describing: error))
        }
        if let context { e.msg = context + ": " + e.msg }
        return e
    }

    /// The contract's wording: the namespace errors name the variable that gave the path.
    static func message(_ e: any ClassifiedError) -> String {
        switch e.kind {
        case .namespaceMissing, .notANamespace: return "CNI_NETNS: " + e.description
        default: return e.description
        }
    }

    /// `error` as the contract reports it (see `wrap`).
    public init(_ error: any Error) { self = CNIError.wrap(error) }
}
