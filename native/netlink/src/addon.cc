// tandem-netlink: the kernel access of a NAT-LB balancer agent without a process per
// operation (the move's hot path: conntrack dump/create/destroy and events, the VIP's
// addresses, gratuitous ARP), and setThreadScheduler (src/sched.cc), a syscall Node lacks. Each object holds its own socket(s) for its whole life,
// opened in the caller's network namespace or in `netns` (setns on the calling thread
// for the socket() call only: a socket keeps the namespace it was born in).
#include "common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Conntrack", tandem::DefineConntrack(env));
  exports.Set("ConntrackEvents", tandem::DefineConntrackEvents(env));
  exports.Set("Link", tandem::DefineLink(env));
  exports.Set("setThreadScheduler", tandem::DefineSetThreadScheduler(env));
  exports.Set("setThreadAffinity", tandem::DefineSetThreadAffinity(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(tandem_netlink, Init)
