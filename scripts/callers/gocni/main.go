// gocni-driver: what containerd's CRI plugin does for a pod sandbox, through go-cni
// (github.com/containerd/go-cni, Debian's golang-github-containerd-go-cni-dev 1.1.7):
//
//	gocni.New(WithMinNetworkCount(2), WithPluginConfDir, WithPluginDir, WithInterfacePrefix("eth"))
//	Load(WithLoNetwork, WithDefaultConf)
//	Setup / Check / Remove with the K8S_POD_* labels, IgnoreUnknown=1 and the portMappings,
//	ipRanges, bandwidth and dns capabilities as go-cni's tag-less structs send them.
//
//	gocni-driver -confdir D -bindir P1:P2 [-no-lo] [-pod NAME] [-port HOST:CONTAINER/PROTO[@HOSTIP]]... \
//	    [-iprange SUBNET,START,END,GW] [-dns SERVER] [-search DOMAIN] setup|check|remove ID NETNS
//
// setup prints go-cni's Result as JSON; errors go to stderr, exit 1. go-cni has no cache-dir
// option: libcni's cache is /var/lib/cni (run it in a mount namespace to keep it private).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	gocni "github.com/containerd/go-cni"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	confDir := flag.String("confdir", gocni.DefaultNetDir, "conflist directory")
	binDir := flag.String("bindir", gocni.DefaultCNIDir, "plugin directories, colon-separated")
	pod := flag.String("pod", "", "pod name (K8S_POD_NAME)")
	ipRange := flag.String("iprange", "", "SUBNET,START,END,GW (capability ipRanges)")
	ingress := flag.Uint64("ingress-rate", 0, "capability bandwidth: ingress rate (bit/s)")
	noLo := flag.Bool("no-lo", false, "load the conflist only (go-cni's loopback network is 0.3.1, which libcni cannot CHECK)")
	var ports, dns, search list
	flag.Var(&ports, "port", "HOST:CONTAINER/PROTO[@HOSTIP] (capability portMappings; repeatable)")
	flag.Var(&dns, "dns", "DNS server (capability dns; repeatable)")
	flag.Var(&search, "search", "DNS search domain (capability dns; repeatable)")
	flag.Parse()
	if flag.NArg() != 3 {
		fmt.Fprintln(os.Stderr, "usage: gocni-driver [flags] setup|check|remove ID NETNS")
		os.Exit(2)
	}
	verb, id, netns := flag.Arg(0), flag.Arg(1), flag.Arg(2)

	// As containerd's CRI plugin (pkg/cri/server/service_linux.go) initialises it.
	c, err := gocni.New(gocni.WithMinNetworkCount(2), gocni.WithPluginConfDir(*confDir),
		gocni.WithPluginDir(strings.Split(*binDir, ":")), gocni.WithInterfacePrefix("eth"))
	if err != nil {
		fail("new", err)
	}
	load := []gocni.Opt{gocni.WithLoNetwork, gocni.WithDefaultConf}
	if *noLo {
		load = load[1:]
		// One network then: the CRI's minimum of two counts the loopback network.
		c, err = gocni.New(gocni.WithMinNetworkCount(1), gocni.WithPluginConfDir(*confDir),
			gocni.WithPluginDir(strings.Split(*binDir, ":")), gocni.WithInterfacePrefix("eth"))
		if err != nil {
			fail("new", err)
		}
	}
	if err := c.Load(load...); err != nil {
		fail("load", err)
	}
	if err := c.Status(); err != nil {
		fail("status", err)
	}

	// As the CRI plugin's cniNamespaceOpts builds them for RunPodSandbox.
	opts := []gocni.NamespaceOpts{
		gocni.WithLabels(map[string]string{
			"K8S_POD_NAMESPACE":          "default",
			"K8S_POD_NAME":               *pod,
			"K8S_POD_INFRA_CONTAINER_ID": id,
			"K8S_POD_UID":                "uid-" + id,
			"IgnoreUnknown":              "1",
		}),
	}
	var pms []gocni.PortMapping
	for _, p := range ports {
		pm, err := portMapping(p)
		if err != nil {
			fail("port", err)
		}
		pms = append(pms, pm)
	}
	opts = append(opts, gocni.WithCapabilityPortMap(pms))
	if *ipRange != "" {
		f := strings.Split(*ipRange, ",")
		for len(f) < 4 {
			f = append(f, "")
		}
		opts = append(opts, gocni.WithCapabilityIPRanges([]gocni.IPRanges{{Subnet: f[0], RangeStart: f[1], RangeEnd: f[2], Gateway: f[3]}}))
	}
	if *ingress > 0 {
		opts = append(opts, gocni.WithCapabilityBandWidth(gocni.BandWidth{IngressRate: *ingress, IngressBurst: *ingress}))
	}
	if len(dns) > 0 || len(search) > 0 {
		opts = append(opts, gocni.WithCapabilityDNS(gocni.DNS{Servers: dns, Searches: search, Options: []string{"ndots:5"}}))
	}

	ctx := context.Background()
	switch verb {
	case "setup":
		res, err := c.Setup(ctx, id, netns, opts...)
		if err != nil {
			fail("setup", err)
		}
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
	case "check":
		if err := c.Check(ctx, id, netns, opts...); err != nil {
			fail("check", err)
		}
	case "remove":
		if err := c.Remove(ctx, id, netns, opts...); err != nil {
			fail("remove", err)
		}
	default:
		fail("verb", fmt.Errorf("unknown verb %q", verb))
	}
}

func portMapping(s string) (gocni.PortMapping, error) {
	var pm gocni.PortMapping
	if at := strings.Index(s, "@"); at >= 0 {
		pm.HostIP, s = s[at+1:], s[:at]
	}
	pm.Protocol = "tcp"
	if sl := strings.Index(s, "/"); sl >= 0 {
		pm.Protocol, s = s[sl+1:], s[:sl]
	}
	hc := strings.SplitN(s, ":", 2)
	if len(hc) != 2 {
		return pm, fmt.Errorf("%q is not HOST:CONTAINER", s)
	}
	h, err1 := strconv.Atoi(hc[0])
	ct, err2 := strconv.Atoi(hc[1])
	if err1 != nil || err2 != nil {
		return pm, fmt.Errorf("%q: ports must be numbers", s)
	}
	pm.HostPort, pm.ContainerPort = int32(h), int32(ct)
	return pm, nil
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "gocni-driver: %s: %v\n", what, err)
	os.Exit(1)
}
