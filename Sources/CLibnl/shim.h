// The parts of libnl-3 / libnl-route-3 that NetKit wraps: links (veth), addresses,
// routes, policy rules, neighbours and tc filters, plus the one request libnl has no call for (the id a
// namespace gives another). Nothing else in Junction includes libnl directly.
#pragma once
#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/classifier.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/net_namespace.h>
#include <stdlib.h>


/// RTM_GETNSID with NETNSA_FD: the id the socket's namespace uses for the namespace open at
/// `fd` (what IFLA_LINK_NETNSID of its links says), or -1 when it has given it none. 0 or a
/// negative NLE_* code. Sent with nl_send, not nl_send_auto: no ack is asked for (the answer
/// is one datagram, nothing stays queued) and the socket's sequence numbers are not used,
/// so libnl's own next request still matches the reply it expects.
static inline int junction_nl_namespace_id(struct nl_sock *sk, int fd, int32_t *out) {
  struct rtgenmsg header = {.rtgen_family = AF_UNSPEC};
  struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETNSID, NLM_F_REQUEST);
  if (!msg) return -NLE_NOMEM;
  int err = nlmsg_append(msg, &header, sizeof(header), NLMSG_ALIGNTO);
  if (err >= 0) err = nla_put_u32(msg, NETNSA_FD, (uint32_t)fd);
  if (err >= 0) err = nl_send(sk, msg);
  nlmsg_free(msg);
  if (err < 0) return err;
  struct sockaddr_nl peer;
  unsigned char *buffer = NULL;
  int length = nl_recv(sk, &peer, &buffer, NULL);
  if (length <= 0) return length < 0 ? length : -NLE_MSG_TRUNC;
  struct nlmsghdr *reply = (struct nlmsghdr *)buffer;
  int result = -NLE_MSGTYPE_NOSUPPORT;
  if (nlmsg_ok(reply, length)) {
    if (reply->nlmsg_type == NLMSG_ERROR) {
      struct nlmsgerr *failure = (struct nlmsgerr *)nlmsg_data(reply);
      result = failure->error ? -nl_syserr2nlerr(failure->error) : -NLE_MSG_TRUNC;
    } else if (reply->nlmsg_type == RTM_NEWNSID) {
      struct nlattr *attributes[NETNSA_MAX + 1];
      result = nlmsg_parse(reply, sizeof(struct rtgenmsg), attributes, NETNSA_MAX, NULL);
      if (result >= 0) {
        *out = attributes[NETNSA_NSID] ? nla_get_s32(attributes[NETNSA_NSID]) : -1;
        result = 0;
      }
    }
  }
  free(buffer);
  return result;
}

/// How many tc filters hang under `parent` (e.g. a clsact's ingress) of link `ifindex`.
static inline int junction_nl_filter_count(struct nl_sock *sk, int ifindex, uint32_t parent) {
  struct nl_cache *cache = NULL;
  int err = rtnl_cls_alloc_cache(sk, ifindex, parent, &cache);
  if (err < 0) return err;
  int count = nl_cache_nitems(cache);
  nl_cache_free(cache);
  return count;
}
