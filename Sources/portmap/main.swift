// portmap: published ports on nftables maps, with Docker's per-network host binding address.
import Base
import CNI
import PortmapPlugin

CNIMain.run(Portmap.self)
