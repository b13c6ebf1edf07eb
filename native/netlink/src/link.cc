// Interfaces of one network namespace: IPv4 addresses over rtnetlink (what `ip addr
// replace/del/show` and `ip link show` do, on one persistent socket) and raw Ethernet
// frames over one AF_PACKET socket (gratuitous ARP). Synchronous: each call is one or two
// netlink round trips (microseconds), against a process spawn per `ip` (tens of ms on a
// loaded host).
#include <linux/if_arp.h>
#include <linux/if_packet.h>
#include <linux/gen_stats.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <linux/if.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include <cstring>
#include <functional>
#include <vector>

#include "common.h"

namespace tandem {
namespace {

constexpr size_t kBufSize = 64 * 1024;

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Link",
                       {
                           InstanceMethod("info", &Link::Info),
                           InstanceMethod("addresses", &Link::Addresses),
                           InstanceMethod("rootQdiscs", &Link::RootQdiscs),
                           InstanceMethod("addAddress", &Link::AddAddress),
                           InstanceMethod("deleteAddress", &Link::DeleteAddress),
                           InstanceMethod("sendFrames", &Link::SendFrames),
                           InstanceMethod("close", &Link::Close),
                           InstanceMethod("isOpen", &Link::IsOpen),
                       });
  }

  // new Link({ netns? })
  explicit Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info), buf_(kBufSize) {
    Napi::Env env = info.Env();
    int nsFd = OpenNetns(env, info.Length() > 0 ? info[0] : env.Undefined());
    if (env.IsExceptionPending()) return;
    std::string error;
    {
      NetnsGuard guard(nsFd, &error);
      if (!guard.failed()) {
        nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (nl_ == nullptr) error = ErrnoText("mnl_socket_open(NETLINK_ROUTE)", errno);
        // Protocol 0: this socket only sends (it receives nothing).
        packet_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        if (packet_ < 0 && error.empty()) error = ErrnoText("socket(AF_PACKET)", errno);
      }
    }
    if (nsFd >= 0) close(nsFd);
    if (error.empty() && mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0)
      error = ErrnoText("mnl_socket_bind(NETLINK_ROUTE)", errno);
    if (!error.empty()) {
      Free();
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return;
    }
    portid_ = mnl_socket_get_portid(nl_);
    int on = 1;
    mnl_socket_setsockopt(nl_, NETLINK_CAP_ACK, &on, sizeof(on));
    seq_ = static_cast<uint32_t>(time(nullptr));
  }

  ~Link() override { Free(); }

 private:
  void Free() {
    if (nl_ != nullptr) mnl_socket_close(nl_);
    nl_ = nullptr;
    if (packet_ >= 0) close(packet_);
    packet_ = -1;
  }

  bool CheckOpen(Napi::Env env) {
    if (nl_ != nullptr) return true;
    Napi::Error::New(env, "link socket is closed").ThrowAsJavaScriptException();
    return false;
  }

  // Sends one request and reads until its ack (or, for a dump, NLMSG_DONE); onMsg sees
  // every data message. Returns 0 or the kernel's errno (-1 for a socket error, in *error).
  int Request(struct nlmsghdr* nlh, const std::function<void(const struct nlmsghdr*)>& onMsg, std::string* error) {
    uint32_t seq = ++seq_;
    nlh->nlmsg_seq = seq;
    bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) {
      *error = ErrnoText("sendto(rtnetlink)", errno);
      return -1;
    }
    for (;;) {
      ssize_t r = mnl_socket_recvfrom(nl_, buf_.data(), buf_.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        *error = ErrnoText("recv(rtnetlink)", errno);
        return -1;
      }
      int left = static_cast<int>(r);
      for (auto* m = reinterpret_cast<struct nlmsghdr*>(buf_.data()); mnl_nlmsg_ok(m, left);
           m = mnl_nlmsg_next(m, &left)) {
        if (m->nlmsg_seq != seq) continue;
        if (m->nlmsg_type == NLMSG_DONE) return 0;
        if (m->nlmsg_type == NLMSG_ERROR) {
          int err = -static_cast<struct nlmsgerr*>(mnl_nlmsg_get_payload(m))->error;
          if (err != 0 || !dump) return err;
          continue;
        }
        onMsg(m);
      }
    }
  }

  // The interface index of `ifname` in this namespace (0 and a JS error when unknown).
  int IndexOf(Napi::Env env, const std::string& ifname, std::string* mac = nullptr) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
      Napi::TypeError::New(env, "bad interface name \"" + ifname + "\"").ThrowAsJavaScriptException();
      return 0;
    }
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(req.data());
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    auto* ifi = static_cast<struct ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname.c_str());
    int index = 0;
    std::string error;
    int err = Request(
        nlh,
        [&](const struct nlmsghdr* m) {
          if (m->nlmsg_type != RTM_NEWLINK) return;
          auto* li = static_cast<const struct ifinfomsg*>(mnl_nlmsg_get_payload(m));
          index = li->ifi_index;
          if (mac == nullptr) return;
          mnl_attr_parse(
              m, sizeof(*li),
              [](const struct nlattr* a, void* data) {
                if (mnl_attr_get_type(a) == IFLA_ADDRESS && mnl_attr_get_payload_len(a) == 6) {
                  auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
                  char text[18];
                  snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", p[0], p[1], p[2], p[3], p[4], p[5]);
                  *static_cast<std::string*>(data) = text;
                }
                return MNL_CB_OK;
              },
              mac);
        },
        &error);
    if (err == -1) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return 0;
    }
    if (err != 0 || index == 0) {
      ThrowErrno(env, "interface " + ifname, err != 0 ? err : ENODEV);
      return 0;
    }
    return index;
  }

  static std::string NameArg(const Napi::CallbackInfo& info, size_t i) {
    return info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  }

  // info(ifname) -> { index, mac }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::string mac;
    int index = IndexOf(env, NameArg(info, 0), &mac);
    if (index == 0) return env.Undefined();
    Napi::Object r = Napi::Object::New(env);
    r.Set("index", static_cast<double>(index));
    r.Set("mac", mac);
    return r;
  }

  // rootQdiscs() -> [{ index, kind, drops }]: every interface's root qdisc in this namespace
  // and its drop counter (RTM_GETQDISC dump; TCA_STATS2 / TCA_STATS_QUEUE, else the legacy
  // TCA_STATS). What `tc -s qdisc show` prints, without a process spawn: a VRLS member's
  // flow monitor reads it every sample (seed Fig. 6, buffer overflow monitor 390).
  Napi::Value RootQdiscs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(req.data());
    nlh->nlmsg_type = RTM_GETQDISC;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    auto* tc = static_cast<struct tcmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct tcmsg)));
    tc->tcm_family = AF_UNSPEC;
    struct Row {
      int index;
      std::string kind;
      double drops;
      bool hasDrops;
    };
    std::vector<Row> rows;
    std::string error;
    int err = Request(
        nlh,
        [&](const struct nlmsghdr* m) {
          if (m->nlmsg_type != RTM_NEWQDISC) return;
          auto* t = static_cast<const struct tcmsg*>(mnl_nlmsg_get_payload(m));
          if (t->tcm_parent != TC_H_ROOT) return;
          Row row{t->tcm_ifindex, "", 0, false};
          mnl_attr_parse(
              m, sizeof(*t),
              [](const struct nlattr* a, void* data) {
                auto* r = static_cast<Row*>(data);
                const int type = mnl_attr_get_type(a);
                if (type == TCA_KIND) {
                  r->kind = std::string(static_cast<const char*>(mnl_attr_get_payload(a)),
                                        strnlen(static_cast<const char*>(mnl_attr_get_payload(a)),
                                                mnl_attr_get_payload_len(a)));
                } else if (type == TCA_STATS2) {
                  // mnl_attr_for_each_nested casts from void*, which C++ refuses: walk by hand.
                  const auto* end = reinterpret_cast<const char*>(mnl_attr_get_payload(a)) + mnl_attr_get_payload_len(a);
                  for (auto* inner = static_cast<const struct nlattr*>(mnl_attr_get_payload(a));
                       mnl_attr_ok(inner, static_cast<int>(end - reinterpret_cast<const char*>(inner)));
                       inner = mnl_attr_next(inner)) {
                    if (mnl_attr_get_type(inner) == TCA_STATS_QUEUE &&
                        mnl_attr_get_payload_len(inner) >= sizeof(struct gnet_stats_queue)) {
                      auto* q = static_cast<const struct gnet_stats_queue*>(mnl_attr_get_payload(inner));
                      r->drops = q->drops;
                      r->hasDrops = true;
                    }
                  }
                } else if (type == TCA_STATS && !r->hasDrops &&
                           mnl_attr_get_payload_len(a) >= sizeof(struct tc_stats)) {
                  r->drops = static_cast<const struct tc_stats*>(mnl_attr_get_payload(a))->drops;
                  r->hasDrops = true;
                }
                return MNL_CB_OK;
              },
              &row);
          rows.push_back(row);
        },
        &error);
    if (err == -1) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (err != 0) {
      ThrowErrno(env, "list qdiscs", err);
      return env.Undefined();
    }
    Napi::Array out = Napi::Array::New(env, rows.size());
    for (size_t i = 0; i < rows.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", static_cast<double>(rows[i].index));
      o.Set("kind", rows[i].kind);
      o.Set("drops", rows[i].hasDrops ? Napi::Value(Napi::Number::New(env, rows[i].drops)) : env.Null());
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  // addresses(ifname) -> ["a.b.c.d/len", ...]: the interface's IPv4 addresses.
  Napi::Value Addresses(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    int index = IndexOf(env, NameArg(info, 0));
    if (index == 0) return env.Undefined();
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(req.data());
    nlh->nlmsg_type = RTM_GETADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    auto* ifa = static_cast<struct ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg)));
    ifa->ifa_family = AF_INET;
    Napi::Array out = Napi::Array::New(env);
    uint32_t n = 0;
    std::string error;
    int err = Request(
        nlh,
        [&](const struct nlmsghdr* m) {
          if (m->nlmsg_type != RTM_NEWADDR) return;
          auto* a = static_cast<const struct ifaddrmsg*>(mnl_nlmsg_get_payload(m));
          if (a->ifa_family != AF_INET || static_cast<int>(a->ifa_index) != index) return;
          struct {
            uint32_t local = 0, address = 0;
            bool hasLocal = false, hasAddress = false;
          } got;
          mnl_attr_parse(
              m, sizeof(*a),
              [](const struct nlattr* at, void* data) {
                auto* g = static_cast<decltype(got)*>(data);
                if (mnl_attr_get_payload_len(at) != 4) return MNL_CB_OK;
                if (mnl_attr_get_type(at) == IFA_LOCAL) {
                  g->local = mnl_attr_get_u32(at);
                  g->hasLocal = true;
                } else if (mnl_attr_get_type(at) == IFA_ADDRESS) {
                  g->address = mnl_attr_get_u32(at);
                  g->hasAddress = true;
                }
                return MNL_CB_OK;
              },
              &got);
          if (!got.hasLocal && !got.hasAddress) return;
          uint32_t addr = got.hasLocal ? got.local : got.address;
          out.Set(n++, Ipv4Text(addr) + "/" + std::to_string(a->ifa_prefixlen));
        },
        &error);
    if (err == -1) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (err != 0) {
      ThrowErrno(env, "list addresses", err);
      return env.Undefined();
    }
    return out;
  }

  // Builds RTM_NEWADDR / RTM_DELADDR for (ifname, address, prefixLen); 0 and a JS error on bad input.
  struct nlmsghdr* AddrMessage(const Napi::CallbackInfo& info, char* buf, uint16_t type, uint16_t flags) {
    Napi::Env env = info.Env();
    std::string ifname = NameArg(info, 0);
    uint32_t addr;
    if (info.Length() < 3 || !info[1].IsString() || !ParseIpv4(info[1].As<Napi::String>().Utf8Value(), &addr) ||
        !info[2].IsNumber()) {
      Napi::TypeError::New(env, "(ifname: string, address: IPv4 string, prefixLen: number)")
          .ThrowAsJavaScriptException();
      return nullptr;
    }
    double len = info[2].As<Napi::Number>().DoubleValue();
    if (!(len >= 0 && len <= 32) || len != static_cast<int>(len)) {
      Napi::RangeError::New(env, "prefixLen must be 0..32").ThrowAsJavaScriptException();
      return nullptr;
    }
    int index = IndexOf(env, ifname);
    if (index == 0) return nullptr;
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    auto* ifa = static_cast<struct ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg)));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = static_cast<uint8_t>(len);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<uint32_t>(index);
    mnl_attr_put_u32(nlh, IFA_LOCAL, addr);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, addr);
    return nlh;
  }

  // addAddress(ifname, address, prefixLen, { replace? }): `ip addr add` (or `replace`: no
  // error when the address is there already). Throws with errno/code on failure.
  Napi::Value AddAddress(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    bool replace = info.Length() > 3 && info[3].IsObject() &&
                   info[3].As<Napi::Object>().Get("replace").ToBoolean().Value();
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
    struct nlmsghdr* nlh =
        AddrMessage(info, req.data(), RTM_NEWADDR, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
    if (nlh == nullptr) return env.Undefined();
    std::string error;
    int err = Request(nlh, [](const struct nlmsghdr*) {}, &error);
    if (err == -1) Napi::Error::New(env, error).ThrowAsJavaScriptException();
    else if (err != 0) ThrowErrno(env, "add address", err);
    return env.Undefined();
  }

  // deleteAddress(ifname, address, prefixLen) -> false when the address was not there.
  Napi::Value DeleteAddress(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
    struct nlmsghdr* nlh = AddrMessage(info, req.data(), RTM_DELADDR, 0);
    if (nlh == nullptr) return env.Undefined();
    std::string error;
    int err = Request(nlh, [](const struct nlmsghdr*) {}, &error);
    if (err == -1) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (err == EADDRNOTAVAIL || err == ENOENT || err == ESRCH) return Napi::Boolean::New(env, false);
    if (err != 0) {
      ThrowErrno(env, "delete address", err);
      return env.Undefined();
    }
    return Napi::Boolean::New(env, true);
  }

  // sendFrames(ifname, frames: Uint8Array[]) -> frames sent. Each frame is a whole Ethernet
  // frame (destination MAC first), sent as is on the interface.
  Napi::Value SendFrames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsArray()) {
      Napi::TypeError::New(env, "sendFrames(ifname: string, frames: Uint8Array[])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int index = IndexOf(env, NameArg(info, 0));
    if (index == 0) return env.Undefined();
    Napi::Array frames = info[1].As<Napi::Array>();
    uint32_t sent = 0;
    for (uint32_t i = 0; i < frames.Length(); i++) {
      Napi::Value v = frames.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        Napi::TypeError::New(env, "frames must be Uint8Arrays").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array f = v.As<Napi::Uint8Array>();
      if (f.ByteLength() < ETH_HLEN) {
        Napi::RangeError::New(env, "a frame is shorter than an Ethernet header").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      struct sockaddr_ll to;
      memset(&to, 0, sizeof(to));
      to.sll_family = AF_PACKET;
      to.sll_ifindex = index;
      to.sll_halen = ETH_ALEN;
      memcpy(to.sll_addr, f.Data(), ETH_ALEN);
      if (sendto(packet_, f.Data(), f.ByteLength(), 0, reinterpret_cast<struct sockaddr*>(&to), sizeof(to)) < 0) {
        ThrowErrno(env, "send frame on " + NameArg(info, 0), errno);
        return env.Undefined();
      }
      sent++;
    }
    return Napi::Number::New(env, sent);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), nl_ != nullptr); }

  struct mnl_socket* nl_ = nullptr;
  int packet_ = -1;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::vector<char> buf_;
};

}  // namespace

Napi::Function DefineLink(Napi::Env env) { return Link::Define(env); }

}  // namespace tandem
