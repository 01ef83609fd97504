#ifndef SWIFTCNI_CNFTNL_SHIM_H
#define SWIFTCNI_CNFTNL_SHIM_H
#include <netinet/in.h>
#include <stdint.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#endif
