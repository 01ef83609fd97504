// An interface of a container: what every plugin's state is keyed by.

/// One attachment: a container's interface (what a GC request's valid list names).
public struct Attachment: Hashable, Sendable {
    public var containerID: String
    public var ifname: String
    public init(containerID: String, ifname: String) {
        self.containerID = containerID
        self.ifname = ifname
    }
}
