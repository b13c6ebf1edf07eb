// tandem-rawio: the raw sockets of one VRLS agent on one interface, in the agent's process.
//
// Sockets (the options are those of the python3 helper this replaces, see
// lib/roles/vrls/rawio.ts):
//  - send IPv4: AF_INET SOCK_RAW IPPROTO_RAW (header included), SO_BINDTODEVICE,
//    SO_BROADCAST, IP_MULTICAST_IF = the interface's address and index,
//    IP_MULTICAST_LOOP 0; the destination is taken from the packet (bytes 16..19);
//  - send frames: AF_PACKET SOCK_RAW protocol 0 (receives nothing) bound to the interface;
//  - receive "vrrp": AF_INET SOCK_RAW protocol 112, SO_BINDTODEVICE, receive buffer 4 MiB,
//    IP_ADD_MEMBERSHIP 224.0.0.18 on the interface's index;
//  - receive "icmp": AF_INET SOCK_RAW IPPROTO_ICMP, SO_BINDTODEVICE, receive buffer 1 MiB;
//  - receive "vrrp6" (issue 16, VRRPv3 over IPv6, RFC 9568): AF_INET6 SOCK_RAW protocol 112,
//    SO_BINDTODEVICE, receive buffer 4 MiB, IPV6_JOIN_GROUP ff02::12 on the interface's index,
//    IPV6_RECVHOPLIMIT / IPV6_RECVPKTINFO / IPV6_RECVTCLASS. An IPv6 raw socket returns the
//    payload only, so each datagram is handed over behind a rebuilt 40-byte IPv6 header
//    (version 6, the traffic class, flow label 0, payload length, next header 112, the hop
//    limit as received, source from the socket address, destination from IPV6_PKTINFO): the
//    receive checks (hop limit 255, checksum over the pseudo-header) run on what arrived.
// Option `ipv4: false` opens no IPv4 socket and needs no IPv4 address on the interface (an
// IPv6-only agent: frames and "vrrp6" only); sendIp then fails (counted).
// Receive buffers are set with SO_RCVBUFFORCE (root; not capped by net.core.rmem_max) and
// fall back to SO_RCVBUF. Each receive socket also has SO_RXQ_OVFL on.
//
// Event-loop integration, no threads: one uv_poll handle per receive socket; when it is
// readable we recvmmsg() with MSG_DONTWAIT until EAGAIN, bounded per wake-up (kSlots x
// kRounds datagrams) so timers and the other handles are not starved under a flood, and
// hand JavaScript one array of {kind, data} per wake-up.
//
// Nothing is lost silently: the kernel's per-socket drop counter (sk_drops: packets that
// did not fit in the receive buffer; the "drops" column of /proc/net/raw) is read with
// getsockopt(SO_MEMINFO) when stats() is called, and is also carried on every received
// datagram as SO_RXQ_OVFL ancillary data (kept as a fallback).
//
// Sends never throw (a control plane must not die on ENOBUFS or EAGAIN): they use
// MSG_DONTWAIT (a full socket buffer must not block the event loop), return false on
// failure and count it (sendErrors, lastSendError). Opening throws, naming the interface.
//
// Namespaces: `netns` opens every socket inside another network namespace (setns on the
// calling thread, open, setns back); a socket keeps the namespace it was created in. Agents
// already run in their namespace and omit it; tests and benchmarks use it.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../common/netns_guard.h"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

namespace {

constexpr size_t kSlotSize = 65536;   // any IPv4 packet fits: nothing is truncated
constexpr int kSlots = 32;            // datagrams per recvmmsg()
constexpr int kRounds = 8;            // recvmmsg() calls per wake-up at most (256 datagrams)
constexpr int kVrrpProtocol = 112;
constexpr uint32_t kVrrpGroup = 0xe0000012;  // 224.0.0.18
constexpr uint32_t kDefaultVrrpRcvBuf = 4u << 20;
constexpr uint32_t kDefaultIcmpRcvBuf = 1u << 20;
constexpr size_t kIpv6Header = 40;

std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#endif
  return "errno " + std::to_string(err);
}

std::string ErrnoText(const std::string& what, int err) {
  return what + ": " + ErrnoName(err) + " (" + strerror(err) + ")";
}

using tandem::NetnsGuard;

class RawIo;

// One receive socket and its poll handle.
struct Rx {
  RawIo* owner = nullptr;
  const char* kind = "";
  int fd = -1;
  uv_poll_t* poll = nullptr;
  uint32_t rcvbufRequested = 0;
  uint64_t received = 0;
  uint64_t batches = 0;
  uint64_t truncated = 0;
  uint64_t recvErrors = 0;
  int lastRecvErrno = 0;
  uint32_t ovfl = 0;  // the latest SO_RXQ_OVFL value seen (sk_drops when that datagram was queued)
  bool ipv6 = false;  // an AF_INET6 raw socket: the IPv6 header is rebuilt in front of the payload
};

class RawIo : public Napi::ObjectWrap<RawIo> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RawIo",
                       {
                           InstanceMethod("sendIp", &RawIo::SendIp),
                           InstanceMethod("sendFrame", &RawIo::SendFrame),
                           InstanceMethod("stats", &RawIo::Stats),
                           InstanceMethod("pump", &RawIo::Pump),
                           InstanceMethod("close", &RawIo::Close),
                           InstanceMethod("info", &RawIo::Info),
                       });
  }

  // new RawIo({ interface, listen: ("vrrp"|"icmp")[], netns?, vrrpRcvBufBytes?, icmpRcvBufBytes? }, onBatch)
  explicit RawIo(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RawIo>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "RawIo(options: object, onBatch: function)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object opts = info[0].As<Napi::Object>();
    Napi::Value ifv = opts.Get("interface");
    if (!ifv.IsString()) {
      Napi::TypeError::New(env, "options.interface must be a string").ThrowAsJavaScriptException();
      return;
    }
    iface_ = ifv.As<Napi::String>().Utf8Value();
    if (iface_.empty() || iface_.size() >= IFNAMSIZ) {
      Napi::Error::New(env, "rawio: interface name '" + iface_ + "' is empty or longer than " +
                                std::to_string(IFNAMSIZ - 1) + " characters")
          .ThrowAsJavaScriptException();
      return;
    }
    bool wantVrrp = false, wantIcmp = false, wantVrrp6 = false;
    Napi::Value lv = opts.Get("listen");
    if (!lv.IsUndefined() && !lv.IsNull()) {
      if (!lv.IsArray()) {
        Napi::TypeError::New(env, "options.listen must be an array of 'vrrp' | 'icmp'").ThrowAsJavaScriptException();
        return;
      }
      Napi::Array la = lv.As<Napi::Array>();
      for (uint32_t i = 0; i < la.Length(); i++) {
        Napi::Value v = la.Get(i);
        std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
        if (s == "vrrp")
          wantVrrp = true;
        else if (s == "icmp")
          wantIcmp = true;
        else if (s == "vrrp6")
          wantVrrp6 = true;
        else {
          Napi::TypeError::New(env, "options.listen: unknown protocol '" + s + "' (vrrp | icmp | vrrp6)")
              .ThrowAsJavaScriptException();
          return;
        }
      }
    }
    Napi::Value v4 = opts.Get("ipv4");
    ipv4_ = !(v4.IsBoolean() && !v4.As<Napi::Boolean>().Value());
    if (!ipv4_ && (wantVrrp || wantIcmp)) {
      Napi::TypeError::New(env, "options.listen: vrrp and icmp are IPv4 sockets (ipv4: false)").ThrowAsJavaScriptException();
      return;
    }
    uint32_t vrrpRcvBuf = OptU32(opts, "vrrpRcvBufBytes", kDefaultVrrpRcvBuf);
    uint32_t icmpRcvBuf = OptU32(opts, "icmpRcvBufBytes", kDefaultIcmpRcvBuf);
    if (env.IsExceptionPending()) return;

    int nsFd = -1;
    Napi::Value ns = opts.Get("netns");
    if (ns.IsString()) {
      std::string path = ns.As<Napi::String>().Utf8Value();
      if (path.find('/') == std::string::npos) path = "/var/run/netns/" + path;
      nsFd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (nsFd < 0) {
        Napi::Error::New(env, "rawio on " + iface_ + ": " + ErrnoText("open netns " + path, errno))
            .ThrowAsJavaScriptException();
        return;
      }
    }

    vrrp_.owner = icmp_.owner = vrrp6_.owner = this;
    vrrp_.kind = "vrrp";
    icmp_.kind = "icmp";
    vrrp6_.kind = "vrrp6";
    vrrp6_.ipv6 = true;
    vrrp_.rcvbufRequested = vrrpRcvBuf;
    vrrp6_.rcvbufRequested = vrrpRcvBuf;
    icmp_.rcvbufRequested = icmpRcvBuf;
    std::string error;
    {
      NetnsGuard guard(nsFd, &error);
      if (!guard.failed()) OpenSockets(wantVrrp, wantIcmp, wantVrrp6, &error);
    }
    if (nsFd >= 0) close(nsFd);
    if (!error.empty()) {
      CloseFds();
      Napi::Error::New(env, "rawio on " + iface_ + ": " + error).ThrowAsJavaScriptException();
      return;
    }

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      CloseFds();
      Napi::Error::New(env, "rawio on " + iface_ + ": cannot get the uv loop").ThrowAsJavaScriptException();
      return;
    }
    for (Rx* rx : {&vrrp_, &icmp_, &vrrp6_}) {
      if (rx->fd < 0) continue;
      rx->poll = new uv_poll_t;
      rx->poll->data = rx;
      if (uv_poll_init(loop, rx->poll, rx->fd) != 0) {
        delete rx->poll;
        rx->poll = nullptr;
        StopPolls();
        CloseFds();
        Napi::Error::New(env, "rawio on " + iface_ + ": uv_poll_init failed").ThrowAsJavaScriptException();
        return;
      }
      uv_poll_start(rx->poll, UV_READABLE, &RawIo::OnPoll);
    }
    onBatch_ = Napi::Persistent(info[1].As<Napi::Function>());
    asyncContext_ = new Napi::AsyncContext(env, "tandem-rawio");
    Ref();  // stay alive while the sockets are open, even if JS drops the wrapper
    open_ = true;
  }

  ~RawIo() override {
    if (open_) Shutdown();
    delete asyncContext_;
  }

 private:
  static uint32_t OptU32(Napi::Object opts, const char* key, uint32_t dflt) {
    Napi::Value v = opts.Get(key);
    if (v.IsUndefined() || v.IsNull()) return dflt;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= 2147483647.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      Napi::RangeError::New(opts.Env(), std::string("option ") + key + " must be a positive integer")
          .ThrowAsJavaScriptException();
      return dflt;
    }
    return static_cast<uint32_t>(d);
  }

  static bool SetInt(int fd, int level, int name, int value, const char* what, std::string* error) {
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0) {
      *error = ErrnoText(std::string("setsockopt(") + what + ")", errno);
      return false;
    }
    return true;
  }

  bool BindToDevice(int fd, std::string* error) {
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface_.c_str(), static_cast<socklen_t>(iface_.size())) < 0) {
      *error = ErrnoText("setsockopt(SO_BINDTODEVICE)", errno);
      return false;
    }
    return true;
  }

  static bool SetRcvBuf(int fd, uint32_t bytes, std::string* error) {
    int v = static_cast<int>(bytes);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == 0) return true;
    return SetInt(fd, SOL_SOCKET, SO_RCVBUF, v, "SO_RCVBUF", error);
  }

  // Runs inside the target namespace. Sets *error on failure (fds are closed by the caller).
  void OpenSockets(bool wantVrrp, bool wantIcmp, bool wantVrrp6, std::string* error) {
    ifindex_ = if_nametoindex(iface_.c_str());
    if (ifindex_ == 0) {
      *error = ErrnoText("if_nametoindex", errno);
      return;
    }
    if (ipv4_) OpenIpv4Send(error);
    if (!error->empty()) return;

    txL2_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (txL2_ < 0) {
      *error = ErrnoText("socket(AF_PACKET, SOCK_RAW)", errno);
      return;
    }
    struct sockaddr_ll ll;
    memset(&ll, 0, sizeof(ll));
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = 0;  // send only
    ll.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(txL2_, reinterpret_cast<struct sockaddr*>(&ll), sizeof(ll)) < 0) {
      *error = ErrnoText("bind(AF_PACKET)", errno);
      return;
    }
    OpenReceive(wantVrrp, wantIcmp, wantVrrp6, error);
  }

  // The IPv4 send socket and the interface's IPv4 address.
  void OpenIpv4Send(std::string* error) {
    {
      int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (s < 0) {
        *error = ErrnoText("socket(AF_INET, SOCK_DGRAM)", errno);
        return;
      }
      struct ifreq req;
      memset(&req, 0, sizeof(req));
      memcpy(req.ifr_name, iface_.c_str(), iface_.size());
      int rc = ioctl(s, SIOCGIFADDR, &req);
      int err = errno;
      close(s);
      if (rc < 0) {
        *error = ErrnoText("ioctl(SIOCGIFADDR): no IPv4 address?", err);
        return;
      }
      address_ = reinterpret_cast<struct sockaddr_in*>(&req.ifr_addr)->sin_addr;
    }

    txIp_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (txIp_ < 0) {
      *error = ErrnoText("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", errno);
      return;
    }
    if (!BindToDevice(txIp_, error) || !SetInt(txIp_, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST", error)) return;
    struct ip_mreqn mif;
    memset(&mif, 0, sizeof(mif));
    mif.imr_address = address_;
    mif.imr_ifindex = static_cast<int>(ifindex_);
    if (setsockopt(txIp_, IPPROTO_IP, IP_MULTICAST_IF, &mif, sizeof(mif)) < 0) {
      *error = ErrnoText("setsockopt(IP_MULTICAST_IF)", errno);
      return;
    }
    if (!SetInt(txIp_, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP", error)) return;
  }

  void OpenReceive(bool wantVrrp, bool wantIcmp, bool wantVrrp6, std::string* error) {
    if (wantVrrp) {
      int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, kVrrpProtocol);
      if (fd < 0) {
        *error = ErrnoText("socket(AF_INET, SOCK_RAW, 112)", errno);
        return;
      }
      vrrp_.fd = fd;
      if (!BindToDevice(fd, error) || !SetRcvBuf(fd, vrrp_.rcvbufRequested, error)) return;
      struct ip_mreqn join;
      memset(&join, 0, sizeof(join));
      join.imr_multiaddr.s_addr = htonl(kVrrpGroup);
      join.imr_ifindex = static_cast<int>(ifindex_);
      if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof(join)) < 0) {
        *error = ErrnoText("setsockopt(IP_ADD_MEMBERSHIP 224.0.0.18)", errno);
        return;
      }
      if (!SetInt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL", error)) return;
    }
    if (wantIcmp) {
      int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
      if (fd < 0) {
        *error = ErrnoText("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", errno);
        return;
      }
      icmp_.fd = fd;
      if (!BindToDevice(fd, error) || !SetRcvBuf(fd, icmp_.rcvbufRequested, error)) return;
      if (!SetInt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL", error)) return;
    }
    if (wantVrrp6) {
      int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, kVrrpProtocol);
      if (fd < 0) {
        *error = ErrnoText("socket(AF_INET6, SOCK_RAW, 112)", errno);
        return;
      }
      vrrp6_.fd = fd;
      if (!BindToDevice(fd, error) || !SetRcvBuf(fd, vrrp6_.rcvbufRequested, error)) return;
      struct ipv6_mreq join;
      memset(&join, 0, sizeof(join));
      inet_pton(AF_INET6, "ff02::12", &join.ipv6mr_multiaddr);
      join.ipv6mr_interface = ifindex_;
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &join, sizeof(join)) < 0) {
        *error = ErrnoText("setsockopt(IPV6_JOIN_GROUP ff02::12)", errno);
        return;
      }
      if (!SetInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT", error) ||
          !SetInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO", error) ||
          !SetInt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1, "IPV6_RECVTCLASS", error) ||
          !SetInt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL", error))
        return;
    }
  }

  void CloseFds() {
    for (int* fd : {&txIp_, &txL2_, &vrrp_.fd, &icmp_.fd, &vrrp6_.fd}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  void StopPolls() {
    for (Rx* rx : {&vrrp_, &icmp_, &vrrp6_}) {
      if (rx->poll == nullptr) continue;
      uv_poll_stop(rx->poll);
      uv_close(reinterpret_cast<uv_handle_t*>(rx->poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      rx->poll = nullptr;
    }
  }

  void Shutdown() {
    open_ = false;
    StopPolls();
    CloseFds();
  }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* rx = static_cast<Rx*>(handle->data);
    if (status < 0) {
      rx->recvErrors++;
      rx->lastRecvErrno = -status;
      return;
    }
    rx->owner->Drain(*rx);
  }

  // Reads what the socket holds (bounded) and hands it to JavaScript as one batch.
  void Drain(Rx& rx) {
    if (!open_ || rx.fd < 0) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array batch = Napi::Array::New(env);
    Napi::String kind = Napi::String::New(env, rx.kind);
    uint32_t count = 0;
    struct mmsghdr msgs[kSlots];
    struct iovec iov[kSlots];
    for (int round = 0; round < kRounds; round++) {
      memset(msgs, 0, sizeof(msgs));
      // IPv6: the payload lands behind room for the header rebuilt in front of it.
      const size_t skip = rx.ipv6 ? kIpv6Header : 0;
      for (int i = 0; i < kSlots; i++) {
        iov[i].iov_base = slab_.data() + static_cast<size_t>(i) * kSlotSize + skip;
        iov[i].iov_len = kSlotSize - skip;
        if (rx.ipv6) {
          msgs[i].msg_hdr.msg_name = &names_[i];
          msgs[i].msg_hdr.msg_namelen = sizeof(names_[i]);
        }
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control_[i];
        msgs[i].msg_hdr.msg_controllen = sizeof(control_[i]);
      }
      int n = recvmmsg(rx.fd, msgs, kSlots, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        rx.recvErrors++;
        rx.lastRecvErrno = errno;
        break;
      }
      for (int i = 0; i < n; i++) {
        struct msghdr* mh = &msgs[i].msg_hdr;
        int hopLimit = -1, tclass = 0;
        struct in6_addr dst6 = {};
        for (struct cmsghdr* c = CMSG_FIRSTHDR(mh); c != nullptr; c = CMSG_NXTHDR(mh, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            if (v > rx.ovfl) rx.ovfl = v;
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT &&
                     c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(&hopLimit, CMSG_DATA(c), sizeof(int));
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS &&
                     c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(&tclass, CMSG_DATA(c), sizeof(int));
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                     c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            dst6 = pi.ipi6_addr;
          }
        }
        if (mh->msg_flags & MSG_TRUNC) rx.truncated++;
        if (mh->msg_flags & MSG_CTRUNC) rx.truncated++;
        size_t len = msgs[i].msg_len < kSlotSize - skip ? msgs[i].msg_len : kSlotSize - skip;
        uint8_t* start = static_cast<uint8_t*>(iov[i].iov_base);
        if (rx.ipv6) {
          // The IPv6 header as it arrived, rebuilt from the socket address and ancillary data.
          if (hopLimit < 0 || mh->msg_namelen < sizeof(struct sockaddr_in6)) {
            rx.recvErrors++;
            rx.lastRecvErrno = EPROTO;
            continue;
          }
          start -= kIpv6Header;
          uint32_t word = htonl((6u << 28) | (static_cast<uint32_t>(tclass & 0xff) << 20));
          memcpy(start, &word, 4);
          start[4] = static_cast<uint8_t>(len >> 8);
          start[5] = static_cast<uint8_t>(len & 0xff);
          start[6] = kVrrpProtocol;
          start[7] = static_cast<uint8_t>(hopLimit);
          memcpy(start + 8, &names_[i].sin6_addr, 16);
          memcpy(start + 24, &dst6, 16);
          len += kIpv6Header;
        }
        Napi::Object item = Napi::Object::New(env);
        item.Set("kind", kind);
        item.Set("data", Napi::Buffer<uint8_t>::Copy(env, start, len));
        batch.Set(count++, item);
        rx.received++;
      }
      if (n < kSlots) break;
    }
    if (count == 0) return;
    rx.batches++;
    napi_value result;
    napi_value argv[] = {batch};
    napi_status st = napi_make_callback(env, asyncContext_ ? static_cast<napi_async_context>(*asyncContext_) : nullptr,
                                        Value(), onBatch_.Value(), 1, argv, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }

  // The kernel's current drop counter of a socket (sk_drops), or the latest SO_RXQ_OVFL.
  static uint32_t Drops(const Rx& rx) {
    if (rx.fd < 0) return rx.ovfl;
    uint32_t mem[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof(mem);
    if (getsockopt(rx.fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 && len > SK_MEMINFO_DROPS * sizeof(uint32_t))
      return mem[SK_MEMINFO_DROPS] > rx.ovfl ? mem[SK_MEMINFO_DROPS] : rx.ovfl;
    return rx.ovfl;
  }

  static int RcvBuf(const Rx& rx) {
    int v = 0;
    socklen_t len = sizeof(v);
    if (rx.fd < 0 || getsockopt(rx.fd, SOL_SOCKET, SO_RCVBUF, &v, &len) < 0) return 0;
    return v;
  }

  bool GetBytes(const Napi::CallbackInfo& info, const char* method, const uint8_t** data, size_t* len) {
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(info.Env(), std::string(method) + "(bytes: Uint8Array)").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
    *data = a.Data();
    *len = a.ByteLength();
    return true;
  }

  void SendFailed(const std::string& what, int err) {
    sendErrors_++;
    lastSendErrno_ = err;
    lastSendError_ = ErrnoText(what, err);
  }

  // sendIp(packet: Uint8Array): boolean. The destination is the packet's (bytes 16..19).
  Napi::Value SendIp(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint8_t* data;
    size_t len;
    if (!GetBytes(info, "sendIp", &data, &len)) return env.Undefined();
    if (!open_) {
      SendFailed("sendIp on a closed RawIo", EBADF);
      return Napi::Boolean::New(env, false);
    }
    if (!ipv4_) {
      SendFailed("sendIp: this RawIo has no IPv4 socket (ipv4: false)", EAFNOSUPPORT);
      return Napi::Boolean::New(env, false);
    }
    if (len < 20 || (data[0] >> 4) != 4) {
      SendFailed("sendIp: not an IPv4 packet (" + std::to_string(len) + " bytes)", EINVAL);
      return Napi::Boolean::New(env, false);
    }
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    memcpy(&dst.sin_addr, data + 16, 4);
    ssize_t n;
    do {
      n = sendto(txIp_, data, len, MSG_DONTWAIT, reinterpret_cast<struct sockaddr*>(&dst), sizeof(dst));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      char addr[INET_ADDRSTRLEN] = "?";
      inet_ntop(AF_INET, &dst.sin_addr, addr, sizeof(addr));
      SendFailed(std::string("sendIp to ") + addr, errno);
      return Napi::Boolean::New(env, false);
    }
    sentIp_++;
    return Napi::Boolean::New(env, true);
  }

  // sendFrame(frame: Uint8Array): boolean. A complete Ethernet frame (no FCS).
  Napi::Value SendFrame(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint8_t* data;
    size_t len;
    if (!GetBytes(info, "sendFrame", &data, &len)) return env.Undefined();
    if (!open_) {
      SendFailed("sendFrame on a closed RawIo", EBADF);
      return Napi::Boolean::New(env, false);
    }
    if (len < 14) {
      SendFailed("sendFrame: shorter than an Ethernet header (" + std::to_string(len) + " bytes)", EINVAL);
      return Napi::Boolean::New(env, false);
    }
    ssize_t n;
    do {
      n = send(txL2_, data, len, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      SendFailed("sendFrame on " + iface_, errno);
      return Napi::Boolean::New(env, false);
    }
    sentFrames_++;
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    uint64_t received = 0, batches = 0, drops = 0;
    Napi::Object sockets = Napi::Object::New(env);
    for (const Rx* rx : {&vrrp_, &icmp_, &vrrp6_}) {
      if (rx->fd < 0 && rx->received == 0 && rx->ovfl == 0) continue;
      uint32_t d = Drops(*rx);
      received += rx->received;
      batches += rx->batches;
      drops += d;
      Napi::Object s = Napi::Object::New(env);
      s.Set("received", Napi::Number::New(env, static_cast<double>(rx->received)));
      s.Set("batches", Napi::Number::New(env, static_cast<double>(rx->batches)));
      s.Set("rxDrops", Napi::Number::New(env, d));
      s.Set("truncated", Napi::Number::New(env, static_cast<double>(rx->truncated)));
      s.Set("recvErrors", Napi::Number::New(env, static_cast<double>(rx->recvErrors)));
      s.Set("lastRecvErrno", Napi::Number::New(env, rx->lastRecvErrno));
      s.Set("rcvbufBytes", Napi::Number::New(env, RcvBuf(*rx)));
      sockets.Set(rx->kind, s);
    }
    o.Set("open", Napi::Boolean::New(env, open_));
    o.Set("received", Napi::Number::New(env, static_cast<double>(received)));
    o.Set("batches", Napi::Number::New(env, static_cast<double>(batches)));
    o.Set("rxDrops", Napi::Number::New(env, static_cast<double>(drops)));
    o.Set("sentIp", Napi::Number::New(env, static_cast<double>(sentIp_)));
    o.Set("sentFrames", Napi::Number::New(env, static_cast<double>(sentFrames_)));
    o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(sendErrors_)));
    o.Set("lastSendError", lastSendError_.empty() ? env.Null() : Napi::String::New(env, lastSendError_));
    o.Set("lastSendErrno", Napi::Number::New(env, lastSendErrno_));
    o.Set("sockets", sockets);
    return o;
  }

  // Reads, now and synchronously, what every receive socket holds (one batch per socket).
  Napi::Value Pump(const Napi::CallbackInfo& info) {
    Drain(vrrp_);
    Drain(icmp_);
    Drain(vrrp6_);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (open_) {
      Shutdown();
      onBatch_.Reset();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    char addr[INET_ADDRSTRLEN] = "";
    if (ipv4_) inet_ntop(AF_INET, &address_, addr, sizeof(addr));
    o.Set("interface", Napi::String::New(env, iface_));
    o.Set("address", Napi::String::New(env, addr));
    o.Set("ifindex", Napi::Number::New(env, ifindex_));
    return o;
  }

  std::string iface_;
  unsigned ifindex_ = 0;
  struct in_addr address_ = {};
  int txIp_ = -1;
  int txL2_ = -1;
  Rx vrrp_;
  Rx icmp_;
  Rx vrrp6_;
  bool ipv4_ = true;
  struct sockaddr_in6 names_[kSlots] = {};
  Napi::FunctionReference onBatch_;
  Napi::AsyncContext* asyncContext_ = nullptr;
  std::vector<uint8_t> slab_ = std::vector<uint8_t>(static_cast<size_t>(kSlots) * kSlotSize);
  alignas(struct cmsghdr) char control_[kSlots][CMSG_SPACE(sizeof(uint32_t)) + 160];
  bool open_ = false;
  uint64_t sentIp_ = 0, sentFrames_ = 0, sendErrors_ = 0;
  int lastSendErrno_ = 0;
  std::string lastSendError_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("RawIo", RawIo::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(tandem_rawio, Init)
