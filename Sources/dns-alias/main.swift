// dns-alias: container names, network aliases and links in the host's DNS server.
import Base
import CNI
import DNSAliasPlugin

CNIMain.run(DNSAlias.self)
