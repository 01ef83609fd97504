// libcni-driver: runs a conflist through libcni (github.com/containernetworking/cni/libcni,
// Debian's golang-github-appc-cni-dev 1.1.2) exactly as CRI-O, Podman 4's CNI backend and
// cnitool do: AddNetworkList / CheckNetworkList / DelNetworkList with libcni's result cache.
//
//	libcni-driver -confdir D -path P1:P2 -cache C [-ifname eth0] [-caps JSON] [-args K=V;K=V] \
//	    add|check|del NETWORK CONTAINERID NETNS
//
// ADD prints the result (in the conflist's version); errors go to stderr, exit 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	confDir := flag.String("confdir", "/etc/cni/net.d", "conflist directory")
	path := flag.String("path", "/opt/cni/bin", "plugin directories, colon-separated")
	cache := flag.String("cache", "/var/lib/cni", "libcni's result cache directory")
	ifname := flag.String("ifname", "eth0", "CNI_IFNAME")
	caps := flag.String("caps", "", "capability arguments (JSON object)")
	args := flag.String("args", "", "CNI_ARGS (K=V;K=V)")
	flag.Parse()
	if flag.NArg() != 4 {
		fmt.Fprintln(os.Stderr, "usage: libcni-driver [flags] add|check|del NETWORK CONTAINERID NETNS")
		os.Exit(2)
	}
	verb, network, id, netns := flag.Arg(0), flag.Arg(1), flag.Arg(2), flag.Arg(3)

	list, err := libcni.LoadConfList(*confDir, network)
	if err != nil {
		fail("load", err)
	}
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: *ifname}
	if *caps != "" {
		if err := json.Unmarshal([]byte(*caps), &rt.CapabilityArgs); err != nil {
			fail("caps", err)
		}
	}
	for _, kv := range strings.Split(*args, ";") {
		if kv == "" {
			continue
		}
		p := strings.SplitN(kv, "=", 2)
		if len(p) != 2 {
			fail("args", fmt.Errorf("%q is not K=V", kv))
		}
		rt.Args = append(rt.Args, [2]string{p[0], p[1]})
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(*path, ":"), *cache, nil)
	ctx := context.Background()
	switch verb {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail("add", err)
		}
		if err := res.Print(); err != nil {
			fail("print", err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail("check", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail("del", err)
		}
	default:
		fail("verb", fmt.Errorf("unknown verb %q", verb))
	}
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "libcni-driver: %s: %v\n", what, err)
	os.Exit(1)
}
