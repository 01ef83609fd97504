import Base

/// The subset of Go's text/template that Docker's `--format` one-liners use, over JSON values:
/// text and `{{ }}` actions (with `{{-`/`-}}` trimming), field paths (`.A.B`, `$`, `$var.A`),
/// pipelines (`{{.Name | upper}}`), `range` (with `$i, $v :=`), `if`/`else`/`end`, `with`, and
/// the functions `json`, `join`, `index`, `len`, `upper`, `lower`, `title`, `split`, `printf`
/// (%s %d %v %q), `print`, `println`, `eq`, `ne`, `not`, `and`, `or`. Values print as Go
/// prints them: a missing field "<no value>", null "<nil>", lists "[a b]", maps
/// "map[k:v]" (keys sorted). `\t` and `\n` written in the format are a tab and a newline, as
/// Docker's CLI makes them.
struct GoTemplate {
    indirect enum Node {
        case text(String)
        case action(Pipeline)
        case range(vars: [String], Pipeline, body: [Node], otherwise: [Node])
        case cond(Pipeline, body: [Node], otherwise: [Node])
        case with(Pipeline, body: [Node], otherwise: [Node])
    }

    /// Commands separated by `|`: each one's value is the next one's last argument.
    struct Pipeline { var commands: [[Arg]] }

    indirect enum Arg {
        case field(base: String?, path: [String])  // base nil: the dot; "$": the root; else a variable
        case string(String)
        case number(String)
        case bool(Bool)
        case ident(String)
        case sub(Pipeline, path: [String])  // (pipeline) or (pipeline).A.B
    }

    struct TemplateError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    let nodes: [Node]

    init(_ source: String) throws {
        let s = source.replacingEscapes()
        var tokens: [(isAction: Bool, text: String)] = []
        var rest = Substring(s)
        while let open = rest.firstRange(of: "{{") {
            var text = String(rest[..<open.lowerBound])
            rest = rest[open.upperBound...]
            guard let close = rest.firstRange(of: "}}") else { throw TemplateError("template: unclosed action") }
            var action = String(rest[..<close.lowerBound])
            rest = rest[close.upperBound...]
            if action.hasPrefix("-") && (action.count == 1 || action.dropFirst().first?.isWhitespace == true) {
                action.removeFirst()
                while text.last?.isWhitespace == true { text.removeLast() }
            }
            if action.hasSuffix("-") && (action.count == 1 || action.dropLast().last?.isWhitespace == true) {
                action.removeLast()
                while rest.first?.isWhitespace == true { rest = rest.dropFirst() }
            }
            if !text.isEmpty { tokens.append((false, text)) }
            tokens.append((true, action.trimmingSpaces()))
        }
        if !rest.isEmpty { tokens.append((false, String(rest))) }
        var i = 0
        let (body, end) = try GoTemplate.parseList(tokens, &i)
        if let end { throw TemplateError("template: unexpected {{\(end)}}") }
        nodes = body
    }

    /// Nodes up to an `end` or `else` (returned) or the end of the input (nil).
    static func parseList(_ t: [(isAction: Bool, text: String)], _ i: inout Int) throws -> ([Node], String?) {
        var out: [Node] = []
        while i < t.count {
            let (isAction, text) = t[i]
            i += 1
            guard isAction else { out.append(.text(text)); continue }
            if text.hasPrefix("/*") { continue }  // a comment
            let (word, args) = text.splitFirstWord()
            switch word {
            case "end", "else":
                return (out, word)
            case "range", "if", "with":
                var vars: [String] = []
                var expr = args
                if word == "range", let assign = args.firstRange(of: ":=") {
                    vars = args[..<assign.lowerBound].split(separator: ",").map { $0.trimmingSpaces() }
                    expr = String(args[assign.upperBound...]).trimmingSpaces()
                }
                let p = try parsePipeline(expr)
                let (body, end) = try parseList(t, &i)
                var otherwise: [Node] = []
                if end == "else" {
                    let (o, end2) = try parseList(t, &i)
                    guard end2 == "end" else { throw TemplateError("template: \(word) without end") }
                    otherwise = o
                } else if end != "end" {
                    throw TemplateError("template: \(word) without end")
                }
                switch word {
                case "range": out.append(.range(vars: vars, p, body: body, otherwise: otherwise))
                case "if": out.append(.cond(p, body: body, otherwise: otherwise))
                default: out.append(.with(p, body: body, otherwise: otherwise))
                }
            default:
                out.append(.action(try parsePipeline(text)))
            }
        }
        return (out, nil)
    }

    static func parsePipeline(_ s: String) throws -> Pipeline {
        var chars = Array(s)
        var pos = 0
        let p = try parsePipeline(&chars, &pos, closing: nil)
        return p
    }

    static func parsePipeline(_ c: inout [Character], _ pos: inout Int, closing: Character?) throws -> Pipeline {
        var commands: [[Arg]] = [[]]
        while pos < c.count {
            let ch = c[pos]
            if ch.isWhitespace { pos += 1; continue }
            if let closing, ch == closing { pos += 1; return Pipeline(commands: commands) }
            if ch == "|" { commands.append([]); pos += 1; continue }
            if ch == "(" {
                pos += 1
                let inner = try parsePipeline(&c, &pos, closing: ")")
                var path = ""
                while pos < c.count, !c[pos].isWhitespace, c[pos] != "|", c[pos] != ")", c[pos] != "(" { path.append(c[pos]); pos += 1 }
                commands[commands.count - 1].append(.sub(inner, path: path.split(separator: ".").map(String.init)))
                continue
            }
            if ch == "\"" || ch == "`" {
                var v = ""
                pos += 1
                while pos < c.count && c[pos] != ch {
                    if ch == "\"" && c[pos] == "\\" && pos + 1 < c.count {
                        pos += 1
                        switch c[pos] { case "n": v.append("\n"); case "t": v.append("\t"); default: v.append(c[pos]) }
                    } else {
                        v.append(c[pos])
                    }
                    pos += 1
                }
                guard pos < c.count else { throw TemplateError("template: unterminated string") }
                pos += 1
                commands[commands.count - 1].append(.string(v))
                continue
            }
            var word = ""
            while pos < c.count, !c[pos].isWhitespace, c[pos] != "|", c[pos] != ")", c[pos] != "(" {
                word.append(c[pos]); pos += 1
            }
            commands[commands.count - 1].append(try arg(word))
        }
        if closing != nil { throw TemplateError("template: unclosed (") }
        guard !commands.contains(where: \.isEmpty) else { throw TemplateError("template: missing value in pipeline") }
        return Pipeline(commands: commands)
    }

    static func arg(_ w: String) throws -> Arg {
        if w == "." { return .field(base: nil, path: []) }
        if w.hasPrefix(".") { return .field(base: nil, path: w.dropFirst().split(separator: ".").map(String.init)) }
        if w.hasPrefix("$") {
            let parts = w.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            return .field(base: parts[0], path: Array(parts.dropFirst()))
        }
        if w == "true" || w == "false" { return .bool(w == "true") }
        if w.first.map({ $0.isNumber || $0 == "-" }) == true { return .number(w) }
        guard w.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw TemplateError("template: unexpected \"\(w)\"") }
        return .ident(w)
    }

    // MARK: execution

    /// What a missing field is: Go prints "<no value>" for it. (A value no JSON document holds,
    /// so it cannot be mistaken for data.)
    static let noValue = JSON.badString("<no value>", .nul)

    func render(_ data: JSON) throws -> String {
        var out = ""
        var vars: [String: JSON] = ["$": data]
        try run(nodes, data, &vars, &out)
        return out
    }

    func run(_ nodes: [Node], _ dot: JSON, _ vars: inout [String: JSON], _ out: inout String) throws {
        for n in nodes {
            switch n {
            case .text(let t): out += t
            case .action(let p): out += GoTemplate.show(try eval(p, dot, vars))
            case .cond(let p, let body, let otherwise):
                try run(GoTemplate.truth(try eval(p, dot, vars)) ? body : otherwise, dot, &vars, &out)
            case .with(let p, let body, let otherwise):
                let v = try eval(p, dot, vars)
                if GoTemplate.truth(v) { try run(body, v, &vars, &out) } else { try run(otherwise, dot, &vars, &out) }
            case .range(let names, let p, let body, let otherwise):
                let v = try eval(p, dot, vars)
                var items: [(JSON, JSON)] = []
                switch v {
                case .array(let a): items = a.enumerated().map { (.number(String($0.offset)), $0.element) }
                case .object(let o): items = o.members.sorted { $0.key < $1.key }.map { (.string($0.key), $0.value) }
                case .null: break
                default: if v != GoTemplate.noValue { throw TemplateError("template: range can't iterate over \(GoTemplate.show(v))") }
                }
                if items.isEmpty { try run(otherwise, dot, &vars, &out); continue }
                for (k, e) in items {
                    if names.count == 1 { vars[names[0]] = e }
                    if names.count == 2 { vars[names[0]] = k; vars[names[1]] = e }
                    try run(body, e, &vars, &out)
                }
            }
        }
    }

    func eval(_ p: Pipeline, _ dot: JSON, _ vars: [String: JSON]) throws -> JSON {
        var last: JSON? = nil
        for cmd in p.commands {
            var args = cmd
            let head = args.removeFirst()
            if case .ident(let f) = head {
                var values = try args.map { try value($0, dot, vars) }
                if let last { values.append(last) }
                last = try GoTemplate.call(f, values)
            } else {
                guard args.isEmpty else { throw TemplateError("template: can't give arguments to a non-function") }
                if last != nil { throw TemplateError("template: can't pipe into a non-function") }
                last = try value(head, dot, vars)
            }
        }
        return last ?? .null
    }

    func value(_ a: Arg, _ dot: JSON, _ vars: [String: JSON]) throws -> JSON {
        switch a {
        case .string(let s): return .string(s)
        case .number(let n): return .number(n)
        case .bool(let b): return .bool(b)
        case .sub(let p, let path): return try GoTemplate.walk(try eval(p, dot, vars), path)
        case .ident(let f): return try GoTemplate.call(f, [])
        case .field(let base, let path):
            let v: JSON
            if let base {
                guard let b = vars[base] else { throw TemplateError("template: undefined variable \"\(base)\"") }
                v = b
            } else {
                v = dot
            }
            return try GoTemplate.walk(v, path)
        }
    }

    /// `.A.B` from `v`.
    static func walk(_ start: JSON, _ path: [String]) throws -> JSON {
        var v = start
        for k in path {
            guard case .object(let o) = v else {
                if v.isNull || v == noValue { return noValue }
                throw TemplateError("template: can't evaluate field \(k) in \(v.kindName)")
            }
            v = o[k] ?? noValue
        }
        return v
    }

    static func call(_ f: String, _ a: [JSON]) throws -> JSON {
        func need(_ n: Int) throws {
            if a.count != n { throw TemplateError("template: wrong number of args for \(f): want \(n) got \(a.count)") }
        }
        switch f {
        case "json":
            try need(1)
            return .string(a[0] == noValue ? "null" : a[0].serialized())
        case "join":
            try need(2)
            return .string((a[0].arrayValue ?? []).map(show).joined(separator: show(a[1])))
        case "split":
            try need(2)
            return .array(show(a[0]).split(separator: show(a[1]), omittingEmptySubsequences: false).map { .string(String($0)) })
        case "index":
            guard var v = a.first else { throw TemplateError("template: index needs an argument") }
            for k in a.dropFirst() {
                switch (v, k) {
                case (.array(let arr), .number(let n)):
                    guard let i = Int(n), i >= 0, i < arr.count else { throw TemplateError("template: index out of range: \(n)") }
                    v = arr[i]
                case (.object(let o), _): v = o[show(k)] ?? noValue
                default: throw TemplateError("template: can't index item of type \(v.kindName)")
                }
            }
            return v
        case "len":
            try need(1)
            switch a[0] {
            case .array(let x): return .number(String(x.count))
            case .object(let o): return .number(String(o.count))
            case .string(let s): return .number(String(s.utf8.count))
            default: throw TemplateError("template: len of \(a[0].kindName)")
            }
        case "upper": try need(1); return .string(show(a[0]).uppercased())
        case "lower": try need(1); return .string(show(a[0]).lowercased())
        case "title":
            try need(1)
            return .string(show(a[0]).split(separator: " ", omittingEmptySubsequences: false).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " "))
        case "print": return .string(a.map(show).joined())
        case "println": return .string(a.map(show).joined(separator: " ") + "\n")
        case "printf":
            guard let fmt = a.first?.stringValue else { throw TemplateError("template: printf needs a format") }
            return .string(printf(fmt, Array(a.dropFirst())))
        case "eq", "ne":
            guard a.count >= 2 else { throw TemplateError("template: \(f) needs two arguments") }
            let equal = a.dropFirst().contains { same(a[0], $0) }
            return .bool(f == "eq" ? equal : !equal)
        case "not": try need(1); return .bool(!truth(a[0]))
        case "and": return a.first { !truth($0) } ?? a.last ?? .bool(true)
        case "or": return a.first { truth($0) } ?? a.last ?? .bool(false)
        default: throw TemplateError("template: function \"\(f)\" not defined")
        }
    }

    static func same(_ x: JSON, _ y: JSON) -> Bool {
        if case .number(let a) = x, case .number(let b) = y { return Double(a) == Double(b) }
        return x == y
    }

    static func printf(_ fmt: String, _ args: [JSON]) -> String {
        var out = ""
        var it = fmt.makeIterator()
        var next = args.makeIterator()
        while let ch = it.next() {
            guard ch == "%" else { out.append(ch); continue }
            guard let verb = it.next() else { out.append("%"); break }
            switch verb {
            case "%": out.append("%")
            case "q": out += JSON.string(next.next().map(show) ?? "").serialized()
            default: out += next.next().map(show) ?? "%!\(verb)(MISSING)"
            }
        }
        return out
    }

    /// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
    static func truth(_ v: JSON) -> Bool {
        switch v {
        case .null: return false
        case .bool(let b): return b
        case .number(let n): return (Double(n) ?? 0) != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        case .badString: return v != noValue
        }
    }

    /// A value as Go's template prints it.
    static func show(_ v: JSON) -> String {
        switch v {
        case .null: return "<nil>"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return s
        case .badString(let s, _): return s
        case .array(let a): return "[" + a.map(show).joined(separator: " ") + "]"
        case .object(let o): return "map[" + o.members.sorted { $0.key < $1.key }.map { "\($0.key):\(show($0.value))" }.joined(separator: " ") + "]"
        }
    }
}

extension String {
    /// `\t` and `\n` written out, as Docker's CLI reads them in a format.
    func replacingEscapes() -> String {
        var out = ""
        var it = makeIterator()
        while let c = it.next() {
            guard c == "\\" else { out.append(c); continue }
            switch it.next() {
            case "t": out.append("\t")
            case "n": out.append("\n")
            case let other?: out.append(c); out.append(other)
            case nil: out.append(c)
            }
        }
        return out
    }

    func trimmingSpaces() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// The first word and the rest (trimmed).
    func splitFirstWord() -> (String, String) {
        let t = trimmingSpaces()
        guard let sp = t.firstIndex(where: \.isWhitespace) else { return (t, "") }
        return (String(t[..<sp]), String(t[sp...]).trimmingSpaces())
    }
}

extension Substring {
    func trimmingSpaces() -> String { String(self).trimmingSpaces() }
}
