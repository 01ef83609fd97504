"""A multi-host lab on one machine: an underlay bridge in its own network namespace, hosts
as network namespaces on it (each with its own swiftcni state roots), and a real etcd
cluster (1 or 3 members) in another namespace on the underlay. Used by the multi-host test
and the overlay benchmark. Everything it creates is removed by cleanup(), also after a failure.
Traffic stays inside the namespaces it creates."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s%s" % (cmd, r.stdout, r.stderr))
    return r


def wait(cond, timeout=10.0):
    """Waits (at most `timeout` s) for `cond()` to hold; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Host:
    def __init__(self, lab, name, index):
        self.lab = lab
        self.name = name
        self.ns = "%s-%s" % (lab.tag, name)
        self.addr = "10.99.0.%d" % (index + 1)
        # A second underlay, IPv6 only (eth6): for overlay networks whose VTEPs are IPv6.
        self.addr6 = "fd99::%d" % (index + 1)
        self.root = os.path.join(lab.tmp, name)
        self.env = dict(os.environ, SWIFTCNI_RUN_DIR=os.path.join(self.root, "run"),
                        SWIFTCNI_STATE_DIR=os.path.join(self.root, "state"), NETCONFPATH=lab.conf_dir,
                        CNI_PATH=lab.bin, CNI_CACHE_DIR=os.path.join(self.root, "cache"))

    def run(self, argv, check=True, timeout=120):
        r = subprocess.run(["nsenter", "--net=/run/netns/" + self.ns] + argv, capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("%s on %s: %s%s" % (" ".join(argv), self.name, r.stdout, r.stderr))
        return r

    def cnictl(self, *args, check=True):
        return self.run([os.path.join(self.lab.bin, "cnictl")] + list(args), check=check)

    def plugin(self, plugin, command, conf, cid="c", netns=None, ifname="eth0", args=""):
        env = dict(self.env, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns or "/run/netns/" + self.ns,
                   CNI_IFNAME=ifname, CNI_ARGS=args)
        r = subprocess.run(["nsenter", "--net=/run/netns/" + self.ns, os.path.join(self.lab.bin, plugin)],
                           input=json.dumps(conf), capture_output=True, text=True, env=env)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None)

    def pidfile(self, which):
        p = os.path.join(self.root, "run", which, "server.pid")
        if which == "dns":
            # The DNS server's state is per network namespace: run/dns/netns-<cookie>/.
            found = glob.glob(os.path.join(self.root, "run", "dns", "netns-*", "server.pid"))
            p = found[0] if found else p
        try:
            pid = int(open(p).read().strip())
            if "swiftcni" in open("/proc/%d/cmdline" % pid).read():
                return pid
        except Exception:
            pass
        return None

    def links(self):
        return sorted(l.split(":")[1].strip().split("@")[0] for l in sh("ip -n %s -o link show" % self.ns).stdout.splitlines())


class Lab:
    def __init__(self, bin_dir, members=3, hosts=("a", "b", "c"), tag=None, tls=False):
        self.bin = os.path.abspath(bin_dir)
        # tls: the members serve TLS and take only clients with a certificate of the lab's CA
        # (Tests/Helpers/make-certs.sh, in <tmp>/certs).
        self.tls = tls
        self.tag = tag or "mh%d" % (os.getpid() % 100000)
        self.tmp = tempfile.mkdtemp(prefix="swiftcni-multihost-")
        self.conf_dir = os.path.join(self.tmp, "net.d")
        os.makedirs(self.conf_dir)
        self.namespaces = []
        self.etcd = {}
        self.members = members
        self.hosts = {}
        self.containers = []
        try:
            self.setup(hosts)
        except Exception:
            self.cleanup()
            raise

    def netns(self, name):
        sh("ip netns add " + name)
        self.namespaces.append(name)
        return name

    def setup(self, hosts):
        ul = self.netns(self.tag + "-ul")
        sh("ip -n %s link add ulbr type bridge && ip -n %s link set ulbr up && ip -n %s link set lo up" % (ul, ul, ul))
        sh("ip -n %s link add ulbr6 type bridge && ip -n %s link set ulbr6 up" % (ul, ul))
        for i, h in enumerate(hosts):
            host = Host(self, h, i)
            self.netns(host.ns)
            self.wire(host.ns, host.addr, "p%s" % h)
            self.wire6(host.ns, host.addr6, "q%s" % h)
            self.hosts[h] = host
        self.kv = self.netns(self.tag + "-kv")
        self.wire(self.kv, ["10.99.0.%d" % (201 + m) for m in range(self.members)], "pkv")
        if self.tls:
            self.certs = os.path.join(self.tmp, "certs")
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            sh(" ".join([os.path.join(root, "Tests", "Helpers", "make-certs.sh"), self.certs, "127.0.0.1"]
                        + ["10.99.0.%d" % (201 + m) for m in range(self.members)]))
        self.start_etcd()

    def wire(self, ns, addrs, port):
        if isinstance(addrs, str):
            addrs = [addrs]
        ul = self.tag + "-ul"
        sh("ip link add %s netns %s type veth peer name eth0 netns %s" % (port, ul, ns))
        sh("ip -n %s link set %s master ulbr up" % (ul, port))
        for a in addrs:
            sh("ip -n %s addr add %s/24 dev eth0" % (ns, a))
        sh("ip -n %s link set eth0 up && ip -n %s link set lo up" % (ns, ns))

    def wire6(self, ns, addr, port):
        ul = self.tag + "-ul"
        sh("ip link add %s netns %s type veth peer name eth6 netns %s" % (port, ul, ns))
        sh("ip -n %s link set %s master ulbr6 up" % (ul, port))
        sh("ip -n %s addr add %s/64 dev eth6 nodad && ip -n %s link set eth6 up" % (ns, addr, ns))

    @property
    def endpoints(self):
        return ["%s://10.99.0.%d:2379" % ("https" if self.tls else "http", 201 + m) for m in range(self.members)]

    def etcd_conf(self, endpoints=None):
        """An overlay configuration's `etcd` section for the lab's cluster (with the client
        certificate when it serves TLS)."""
        if endpoints:
            return {"endpoints": endpoints}
        c = {"endpoints": self.endpoints}
        if self.tls:
            c.update(caFile=os.path.join(self.certs, "ca.crt"), certFile=os.path.join(self.certs, "client.crt"),
                     keyFile=os.path.join(self.certs, "client.key"))
        return c

    def ctl(self, *extra):
        """etcdctl for the lab's cluster, inside its namespace."""
        tls = ""
        if self.tls:
            tls = " --cacert=%s/ca.crt --cert=%s/client.crt --key=%s/client.key" % (self.certs, self.certs, self.certs)
        return "ip netns exec %s etcdctl --endpoints=%s%s %s" % (self.kv, ",".join(self.endpoints), tls, " ".join(extra))

    def start_etcd(self):
        cluster = ",".join("m%d=http://10.99.0.%d:2380" % (m, 201 + m) for m in range(self.members))
        for m in range(self.members):
            self.start_member(m, cluster, "new")
        deadline = time.time() + 30
        while time.time() < deadline:
            r = sh(self.ctl("endpoint health"), check=False)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("etcd did not become healthy: " + r.stdout + r.stderr)

    def start_member(self, m, cluster=None, state="existing"):
        cluster = cluster or ",".join("m%d=http://10.99.0.%d:2380" % (i, 201 + i) for i in range(self.members))
        ip = "10.99.0.%d" % (201 + m)
        log = open(os.path.join(self.tmp, "etcd-m%d.log" % m), "a")
        scheme = "https" if self.tls else "http"
        tls = []
        if self.tls:
            tls = ["--cert-file", os.path.join(self.certs, "server.crt"), "--key-file", os.path.join(self.certs, "server.key"),
                   "--client-cert-auth", "--trusted-ca-file", os.path.join(self.certs, "ca.crt")]
        self.etcd[m] = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + self.kv, "etcd", "--name", "m%d" % m,
             "--data-dir", os.path.join(self.tmp, "etcd-m%d" % m)] + tls + [
             "--listen-client-urls", "%s://%s:2379" % (scheme, ip), "--advertise-client-urls", "%s://%s:2379" % (scheme, ip),
             "--listen-peer-urls", "http://%s:2380" % ip, "--initial-advertise-peer-urls", "http://%s:2380" % ip,
             "--initial-cluster", cluster, "--initial-cluster-state", state, "--initial-cluster-token", self.tag,
             "--heartbeat-interval", "50", "--election-timeout", "500"],
            stdout=log, stderr=log)

    def kill_member(self, m):
        p = self.etcd.pop(m)
        p.kill()
        p.wait()

    def etcdctl(self, *args):
        return sh(self.ctl(*args), check=False).stdout

    def claims(self, net):
        """The addresses claimed in the network's address blocks: {ip: (containerID, ifname, host)}."""
        out = {}
        for line in self.etcdctl("get --prefix /swiftcni/networks/%s/ipam/blocks/ --print-value-only" % net).splitlines():
            if not line.strip():
                continue
            for ip, (cid, ifname, host, _token) in json.loads(line).get("claims", {}).items():
                if ip in out:
                    raise AssertionError("%s is claimed in two blocks" % ip)
                out[ip] = (cid, ifname, host)
        return out

    def blocks(self, net):
        """The network's address blocks: {cidr: host}."""
        out = {}
        for line in self.etcdctl("get --prefix /swiftcni/networks/%s/ipam/blocks/ --print-value-only" % net).splitlines():
            if line.strip():
                b = json.loads(line)
                out[b["cidr"]] = b["host"]
        return out

    def write_conflist(self, name, conf):
        with open(os.path.join(self.conf_dir, name + ".conflist"), "w") as f:
            json.dump(conf, f)

    def container(self, name):
        ns = "%s-%s" % (self.tag, name)
        sh("ip netns add " + ns)
        sh("ip -n %s link set lo up" % ns)
        self.containers.append(ns)
        return ns

    def drop_container(self, ns):
        sh("ip netns del " + ns, check=False)
        shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)
        if ns in self.containers:
            self.containers.remove(ns)

    def cleanup(self):
        for h in self.hosts.values():
            for which in ("overlay", "dns"):
                pid = h.pidfile(which)
                if pid:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
        for p in list(self.etcd.values()):
            p.kill()
            p.wait()
        self.etcd = {}
        for ns in list(self.containers):
            self.drop_container(ns)
        for ns in reversed(self.namespaces):
            sh("ip netns del " + ns, check=False)
        self.namespaces = []
        shutil.rmtree(self.tmp, ignore_errors=True)
