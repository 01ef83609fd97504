// overlay: a VXLAN network spanning hosts; everything cluster-wide is asked of the host's agent.
import CNI
import Overlay

CNIMain.run(OverlayPlugin.self)
