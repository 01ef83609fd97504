// Taking an attachment apart: the steps DEL runs, and the undo list of an ADD that fails.
// Steps run in order and collect their errors instead of stopping at the first (as netavark's
// teardown does), unless a step's failure makes what follows unsafe — a veth deleted while
// its firewall rules live on leaks traffic to whoever gets the address next — in which case
// the rest waits for the runtime's retry of DEL.

import Base

public struct Teardown {
    /// What a failing step means for the steps after it.
    public enum OnFailure: Sendable {
        /// The rest would be unsafe without it: stop (DEL is retried by the runtime).
        case stop
        /// The rest does not depend on it: go on, and report it with the others.
        case goOn
    }

    struct Step {
        var what: String
        var onFailure: OnFailure
        var body: () throws -> Void
    }

    var steps: [Step] = []

    public init() {}

    public var isEmpty: Bool { steps.isEmpty }

    /// Adds a step; `what` names it in the error when it fails.
    public mutating func add(_ what: String, onFailure: OnFailure = .goOn, _ body: @escaping () throws -> Void) {
        steps.append(Step(what: what, onFailure: onFailure, body: body))
    }

    /// DEL: runs the steps in order. Throws one error naming every step that failed (with the
    /// first failure's code); a `.stop` step that fails ends the run there.
    public func run() throws {
        var failures: [(String, CNIError)] = []
        for s in steps {
            do {
                try s.body()
            } catch {
                failures.append((s.what, CNIError.wrap(error)))
                if s.onFailure == .stop { break }
            }
        }
        guard let first = failures.first else { return }
        if failures.count == 1 { throw first.1 }
        throw CNIError(first.1.code, failures.map { "\($0.0): \($0.1.msg)" }.joined(separator: "; "))
    }

    /// A failed ADD: undoes what it did, last first, whatever fails (the ADD's own error is
    /// what the runtime is told; the runtime's DEL cleans what an undo step could not).
    public func undo() {
        for s in steps.reversed() { try? s.body() }
    }
}
