#ifndef SWIFTCNI_CMNL_SHIM_H
#define SWIFTCNI_CMNL_SHIM_H
// glibc's netinet/in.h must come before any linux/ netfilter or netlink header.
#include <netinet/in.h>
#include <net/if.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/ip.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/veth.h>
#include <linux/neighbour.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#endif
