import Base

/// Docker's `--format` for lists (`network ls`, `ps`): `table` (the default columns),
/// `json` (one object per line, keys sorted, as Docker prints them), `table TEMPLATE` (a header
/// row from the fields' column names, then the rows, aligned at tabs), or a Go template
/// printed once per row.
struct Listing {
    /// Column names of the fields, as Docker's headers.
    let headers: [String: String]
    /// The default table's fields.
    let columns: [String]

    func render(_ rows: [JSONObject], format: String?) throws -> String {
        let f = format ?? "table"
        if f == "table" { return table(columns.map { headers[$0] ?? $0.uppercased() }, rows.map { r in columns.map { GoTemplate.show(r[$0] ?? .string("")) } }) }
        if f == "json" {
            return rows.map { JSON.object(JSONObject($0.members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })).serialized() + "\n" }.joined()
        }
        if f.hasPrefix("table ") || f.hasPrefix("table\t") {
            let t = try GoTemplate(String(f.dropFirst(6)))
            var names = JSONObject()
            for (k, v) in headers { names[k] = .string(v) }
            let header = try t.render(.object(names)).split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let cells = try rows.map { try t.render(.object($0)).split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
            return table(header, cells)
        }
        let t = try GoTemplate(f)
        return try rows.map { try t.render(.object($0)) + "\n" }.joined()
    }

    /// Cells aligned in columns three spaces apart.
    func table(_ header: [String], _ rows: [[String]]) -> String {
        let n = ([header] + rows).map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: n)
        for r in [header] + rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] + 3 - c.count) }.joined() + "\n"
        }
        return ([header] + rows).map(line).joined()
    }
}

/// Docker's `--filter KEY=VALUE` (repeatable): values of one key are alternatives, different
/// keys must all hold.
struct Filters {
    var values: [String: [String]] = [:]

    init(_ args: [String], accepted: Set<String>) throws {
        for a in args {
            guard let eq = a.firstIndex(of: "=") else { throw CLIError("bad format of filter (expected name=value)") }
            // `label!=…`: the key is "label!".
            let k = String(a[..<eq]).lowercased(), v = String(a[a.index(after: eq)...])
            guard accepted.contains(k) else { throw CLIError("invalid filter '\(k)'") }
            values[k, default: []].append(v)
        }
    }

    /// Whether `key`'s alternatives let the item through (no filter on `key`: yes).
    func allows(_ key: String, _ test: (String) -> Bool) -> Bool {
        guard let vs = values[key] else { return true }
        return vs.contains(where: test)
    }

    /// Docker's label filter: `label=KEY` (present) or `label=KEY=VALUE`; every one must hold.
    func labels(_ labels: [(String, String)]) -> Bool {
        (values["label"] ?? []).allSatisfy { Filters.label($0, in: labels) }
    }

    /// Whether `KEY` or `KEY=VALUE` is among `labels`.
    static func label(_ f: String, in labels: [(String, String)]) -> Bool {
        if let eq = f.firstIndex(of: "=") {
            let k = String(f[..<eq]), v = String(f[f.index(after: eq)...])
            return labels.contains { $0.0 == k && $0.1 == v }
        }
        return labels.contains { $0.0 == f }
    }
}

/// `inspect`'s output: Docker's JSON array, or with `-f` the template once per item.
func printInspected(_ items: [JSON], format: String?) throws {
    guard let format else { return print(JSON.array(items).serialized(indent: 4)) }
    do {
        let t = try GoTemplate(format)
        for i in items { print(try t.render(i)) }
    } catch let e as GoTemplate.TemplateError {
        throw CLIError(e.description)
    }
}
