// overlay: a VXLAN network spanning hosts, its endpoints and addresses kept in etcd.
import CNI
import HostLocalIPAM
import Overlay

// host-local (with its etcd store) runs in-process when CNI_PATH finds our own build.
Delegate.builtins["host-local"] = HostLocal.self
CNIMain.run(OverlayPlugin.self)
