// host-local: IPAM from local ranges, state in files (the reference plugin's format).
import CNI
import HostLocalIPAM

CNIMain.run(HostLocal.self)
