// bridge: a Linux bridge network; veth into the container, gateway, MTU, VLANs, IPv4 + IPv6.
import BridgeNetwork
import CNI
import HostLocalIPAM

// host-local runs in-process when the host-local found in CNI_PATH is our own build.
Delegate.builtins["host-local"] = HostLocal.self
CNIMain.run(Bridge.self)
