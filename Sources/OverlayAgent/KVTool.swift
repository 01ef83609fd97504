// `swiftcni-overlay-agent kv …`: the few etcd operations cnictl needs (its overlay networks'
// shared definitions), run by the one binary that links the etcd client, so that cnictl —
// exec'd once per container — does not pay the TLS stack's start-up.
//
//   swiftcni-overlay-agent kv ETCD_JSON get KEY
//   swiftcni-overlay-agent kv ETCD_JSON range PREFIX
//   swiftcni-overlay-agent kv ETCD_JSON create KEY VALUE      (prints {"created": true|false})
//   swiftcni-overlay-agent kv ETCD_JSON delete KEY
//   swiftcni-overlay-agent kv ETCD_JSON delete-prefix PREFIX
//
// Output: one JSON object on stdout ({"kvs": [{"key", "value"}]} for get and range); on failure
// {"error": "..."} and exit status 1.

#if canImport(Glibc)
import Glibc
#endif
import Base
import CNI
import Etcd
import Overlay

public enum KVTool {
    public static func main(_ args: [String]) -> Never {
        func fail(_ msg: String) -> Never {
            Posix.writeStdout(JSON.object(JSONObject([("error", .string(msg))])).serialized() + "\n")
            exit(1)
        }
        guard args.count >= 3, let j = try? JSON.parse(Array(args[0].utf8)), let r = try? JSONReader(j, path: "etcd") else {
            fail("usage: swiftcni-overlay-agent kv ETCD_JSON get|range|create|delete|delete-prefix KEY [VALUE]")
        }
        let cfg: EtcdConfig
        do { cfg = try EtcdConfig(r) } catch { fail("\(error)") }
        let etcd = EtcdClient(cfg)
        func kvs(_ l: [KeyValue]) -> JSON {
            .object(JSONObject([("kvs", .array(l.map { .object(JSONObject([("key", .string($0.key)), ("value", .string($0.text))])) }))]))
        }
        do {
            let out: JSON
            switch (args[1], args.count) {
            case ("get", 3): out = kvs(try etcd.get(args[2]).map { [$0] } ?? [])
            case ("range", 3): out = kvs(try etcd.range(prefix: args[2]).0)
            case ("create", 4): out = .object(JSONObject([("created", .bool(try etcd.create(args[2], Array(args[3].utf8))))]))
            case ("delete", 3): out = .object(JSONObject([("deleted", .int(try etcd.delete(args[2])))]))
            case ("delete-prefix", 3): out = .object(JSONObject([("deleted", .int(try etcd.delete(prefix: args[2])))]))
            default: fail("unknown kv operation \(args[1...].joined(separator: " "))")
            }
            Posix.writeStdout(out.serialized() + "\n")
            exit(0)
        } catch {
            fail("\(error)")
        }
    }
}
