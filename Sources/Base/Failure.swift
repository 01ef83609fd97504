// What kind of failure an error is. The modules below the CNI contract (netlink, nftables,
// DNS, etcd, the daemons, files) throw their own typed errors, each carrying its operation
// and errno where there is one, and say which kind of failure it is — never a CNI code: the
// contract maps kinds to codes and messages in one place (CNI's ErrorMapping.swift).

/// The kinds of failure the suite's lower layers report.
public enum FailureKind: Hashable, Sendable {
    /// A file or directory could not be read or written.
    case io
    /// A kernel operation failed (netlink, netns, nftables, sysctl, a system call).
    case kernel
    /// The network namespace named does not exist.
    case namespaceMissing
    /// The path named is not a network namespace.
    case notANamespace
    /// Content that should be JSON (or another format we read) is not.
    case malformed
    /// A name or value handed to the call cannot be used.
    case invalidArgument
    /// A name, port or address is already held by something else.
    case conflict
    /// An address to bind to does not exist on the host.
    case hostAddressMissing
    /// Another table's forward chain drops by default and would drop the traffic.
    case hostFirewall
    /// What is in place differs from what was set up (CHECK).
    case differs
    /// One of the suite's daemons could not be started, stopped answering, refused a
    /// change, or serves another network namespace.
    case daemon(DaemonRole)
    /// The cluster store answered a request with an error.
    case storeFailed
    /// The cluster store (or another peer) cannot be reached now: try again later.
    case unavailable
}

/// The suite's daemons.
public enum DaemonRole: String, Hashable, Sendable {
    case dnsServer = "DNS server"
    case overlayAgent = "overlay agent"
}

/// An error that says what kind of failure it is; its description is the message.
public protocol ClassifiedError: Error, CustomStringConvertible {
    var kind: FailureKind { get }
}
