// loopback: brings the container's `lo` up (whatever CNI_IFNAME says).
import CNI
import LoopbackPlugin

CNIMain.run(Loopback.self)
