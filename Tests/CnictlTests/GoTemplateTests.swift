// The Go template subset of `--format` / `-f`, on Docker's shapes, checked against what Go's
// text/template prints for the same template and data.

import Base
import Testing
@testable import CnictlCommands

@Suite struct GoTemplateTests {
    let network = try! JSON.parse(Array(#"""
        {"Name":"isolated_nw","Driver":"bridge","EnableIPv6":false,"Labels":{"b":"2","a":"1"},
         "IPAM":{"Driver":"default","Config":[{"Subnet":"172.25.0.0/16","Gateway":"172.25.0.1"},{"Subnet":"fd00::/64"}]},
         "Containers":{"c2":{"Name":"container2","IPv4Address":"172.25.0.2/16"},"c1":{"Name":"container1","IPv4Address":"172.25.0.3/16"}},
         "Options":{},"Count":3,"Nothing":null,"Tags":["x","y"]}
        """#.utf8))

    func render(_ t: String) throws -> String { try GoTemplate(t).render(network) }

    @Test(arguments: [
        ("{{.Name}}", "isolated_nw"),
        (#"{{.Name}}\t{{.Driver}}"#, "isolated_nw\tbridge"),
        (#"{{.Name}}\n"#, "isolated_nw\n"),
        ("{{range .IPAM.Config}}{{.Subnet}} {{end}}", "172.25.0.0/16 fd00::/64 "),
        ("{{range .Containers}}{{.Name}},{{end}}", "container1,container2,"),  // map values by sorted key
        ("{{range $id, $c := .Containers}}{{$id}}={{$c.IPv4Address}};{{end}}", "c1=172.25.0.3/16;c2=172.25.0.2/16;"),
        ("{{range $i, $e := .Tags}}{{$i}}:{{$e}} {{end}}", "0:x 1:y "),
        (#"{{index .Labels "a"}}"#, "1"),
        ("{{(index .IPAM.Config 0).Gateway}}", "172.25.0.1"),
        ("{{index .Tags 1}}", "y"),
        ("{{json .Labels}}", #"{"b":"2","a":"1"}"#),
        ("{{json .Tags}}", #"["x","y"]"#),
        ("{{json .Name}}", #""isolated_nw""#),
        (#"{{join .Tags ", "}}"#, "x, y"),
        ("{{len .Tags}} {{len .Containers}}", "2 2"),
        ("{{.Name | upper}}", "ISOLATED_NW"),
        ("{{upper .Driver | lower}}", "bridge"),
        ("{{.Labels}}", "map[a:1 b:2]"),
        ("{{.Tags}}", "[x y]"),
        ("{{.EnableIPv6}}", "false"),
        ("{{.Count}}", "3"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Nothing}}", "<nil>"),
        ("{{.Missing.Deeper}}", "<no value>"),
        ("{{if .EnableIPv6}}v6{{else}}v4{{end}}", "v4"),
        (#"{{if eq .Driver "bridge" "overlay"}}yes{{end}}"#, "yes"),
        (#"{{if ne .Driver "bridge"}}no{{else}}same{{end}}"#, "same"),
        ("{{if and .Tags .Count}}both{{end}}", "both"),
        ("{{if not .Options}}empty{{end}}", "empty"),
        ("{{with .IPAM}}{{.Driver}}{{end}}", "default"),
        ("{{range .Options}}x{{else}}none{{end}}", "none"),
        (#"{{printf "%s/%v" .Name .Count}}"#, "isolated_nw/3"),
        ("a {{- \" b \" -}} c", "a b c"),
        ("{{/* a comment */}}ok", "ok"),
        ("{{$.Name}}", "isolated_nw"),
        (#"{{range .IPAM.Config}}{{$.Name}}:{{.Subnet}} {{end}}"#, "isolated_nw:172.25.0.0/16 isolated_nw:fd00::/64 "),
    ])
    func rendersAsGo(_ t: String, _ want: String) throws {
        #expect(try render(t) == want)
    }

    @Test(arguments: [
        ("{{.Name", "template: unclosed action"),
        ("{{range .Tags}}x", "template: range without end"),
        ("{{end}}", "template: unexpected {{end}}"),
        ("{{nope .Name}}", #"template: function "nope" not defined"#),
        ("{{range .Name}}x{{end}}", "template: range can't iterate over isolated_nw"),
        ("{{$x}}", #"template: undefined variable "$x""#),
        ("{{index .Tags 5}}", "template: index out of range: 5"),
        ("{{.Name.First}}", "template: can't evaluate field First in a string"),
    ])
    func refuses(_ t: String, _ message: String) {
        #expect(throws: GoTemplate.TemplateError.self) { _ = try render(t) }
        do { _ = try render(t) } catch { #expect("\(error)" == message) }
    }
}
