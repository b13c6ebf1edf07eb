// Conntrack over ctnetlink: libnetfilter_conntrack builds and parses the messages
// (nfct_nlmsg_build / nfct_nlmsg_parse: the same attribute encoding the conntrack tool
// uses, so NAT bindings are set up exactly as `conntrack -I --dst-nat/--src-nat` does),
// libmnl carries them. One persistent socket per Conntrack object.
//
// Requests go in batches: up to kPerChunk messages in one sendto() (nfnetlink processes
// every message of a datagram in order, each with its own ack), then the acks are read.
// NETLINK_CAP_ACK keeps an error ack small (it would otherwise carry the whole request).
// A thousand entries are created in a few milliseconds, against ~100 ms for a spawned
// `conntrack -R` on a loaded host.
//
// ConntrackEvents: a second socket subscribed to NEW/UPDATE/DESTROY, non-blocking, watched
// by a uv_poll handle (no threads); each wake-up reads what is queued and hands JavaScript
// one array. pump() reads what is queued right now, synchronously (a caller that must not
// miss an event the kernel already sent, e.g. before taking a move's delta). The receive
// buffer is large and NETLINK_NO_ENOBUFS stays off: an overflow is counted, never silent.
#include <uv.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
extern "C" {
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <libnetfilter_conntrack/linux_nfnetlink_conntrack.h>
}

#include <functional>
#include <unordered_set>
#include <vector>

#include "common.h"

namespace tandem {
namespace {

constexpr size_t kSendBufSize = 64 * 1024;
constexpr size_t kRecvBufSize = 256 * 1024;
constexpr size_t kMaxMsgSize = 1024;  // one conntrack request is ~200 bytes
constexpr uint32_t kPerChunk = 128;

struct Key {
  uint8_t proto;
  uint32_t src, dst;  // network order
  uint16_t sport, dport;  // host order
};

bool ProtoOf(Napi::Object o, uint8_t* proto) {
  Napi::Value p = o.Get("protocol");
  std::string s = p.IsString() ? p.As<Napi::String>().Utf8Value() : "";
  if (s == "tcp") *proto = IPPROTO_TCP;
  else if (s == "udp") *proto = IPPROTO_UDP;
  else {
    Napi::TypeError::New(o.Env(), "protocol must be \"tcp\" or \"udp\"").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// { protocol, src, dst, sport, dport }: the original direction.
bool KeyOf(Napi::Value v, Key* k) {
  if (!v.IsObject()) {
    Napi::TypeError::New(v.Env(), "a conntrack key must be an object").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Object o = v.As<Napi::Object>();
  double sport, dport;
  return ProtoOf(o, &k->proto) && GetIpv4(o, "src", &k->src) && GetIpv4(o, "dst", &k->dst) &&
         GetInt(o, "sport", 0, 65535, &sport, true) && GetInt(o, "dport", 0, 65535, &dport, true) &&
         ((k->sport = static_cast<uint16_t>(sport)), (k->dport = static_cast<uint16_t>(dport)), true);
}

void SetTuple(struct nf_conntrack* ct, const Key& k) {
  nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
  nfct_set_attr_u32(ct, ATTR_IPV4_SRC, k.src);
  nfct_set_attr_u32(ct, ATTR_IPV4_DST, k.dst);
  nfct_set_attr_u8(ct, ATTR_L4PROTO, k.proto);
  nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(k.sport));
  nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(k.dport));
}

// Entries cross to JavaScript packed, kWords u32 per entry (index.js decodes them): one
// typed array instead of thousands of small objects built through N-API (10x faster).
//   [0] protocol (6 tcp, 17 udp; 0 = no entry)  [1..4] original src, dst (host order), sport, dport
//   [5..8] reply src, dst, sport, dport  [9] TCP state (kNoState when absent)  [10] timeout (s)
//   [11] status (IPS_*)  [12] mark
constexpr size_t kWords = 13;
constexpr uint32_t kNoState = 0xffffffff;

// Appends `ct` to `out`; false (nothing appended) when it is not IPv4 TCP/UDP.
bool PackFlow(const struct nf_conntrack* ct, std::vector<uint32_t>* out) {
  if (!nfct_attr_is_set(ct, ATTR_L3PROTO) || nfct_get_attr_u8(ct, ATTR_L3PROTO) != AF_INET) return false;
  uint8_t proto = nfct_get_attr_u8(ct, ATTR_L4PROTO);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return false;
  auto u32 = [&](enum nf_conntrack_attr a) { return nfct_attr_is_set(ct, a) ? nfct_get_attr_u32(ct, a) : 0; };
  auto port = [&](enum nf_conntrack_attr a) {
    return static_cast<uint32_t>(nfct_attr_is_set(ct, a) ? ntohs(nfct_get_attr_u16(ct, a)) : 0);
  };
  out->push_back(proto);
  out->push_back(ntohl(u32(ATTR_ORIG_IPV4_SRC)));
  out->push_back(ntohl(u32(ATTR_ORIG_IPV4_DST)));
  out->push_back(port(ATTR_ORIG_PORT_SRC));
  out->push_back(port(ATTR_ORIG_PORT_DST));
  out->push_back(ntohl(u32(ATTR_REPL_IPV4_SRC)));
  out->push_back(ntohl(u32(ATTR_REPL_IPV4_DST)));
  out->push_back(port(ATTR_REPL_PORT_SRC));
  out->push_back(port(ATTR_REPL_PORT_DST));
  out->push_back(proto == IPPROTO_TCP && nfct_attr_is_set(ct, ATTR_TCP_STATE) ? nfct_get_attr_u8(ct, ATTR_TCP_STATE)
                                                                             : kNoState);
  out->push_back(u32(ATTR_TIMEOUT));
  out->push_back(u32(ATTR_STATUS));
  out->push_back(u32(ATTR_MARK));
  return true;
}

Napi::Uint32Array ToTyped(Napi::Env env, const std::vector<uint32_t>& words) {
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, words.size() * sizeof(uint32_t));
  if (!words.empty()) memcpy(ab.Data(), words.data(), words.size() * sizeof(uint32_t));
  return Napi::Uint32Array::New(env, words.size(), ab, 0);
}

struct nlmsghdr* PutRequest(char* buf, uint8_t type, uint16_t flags, uint32_t seq) {
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = seq;
  auto* nfh = static_cast<struct nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg)));
  nfh->nfgen_family = AF_INET;
  nfh->version = NFNETLINK_V0;
  nfh->res_id = 0;
  return nlh;
}

struct NlSocket {
  struct mnl_socket* nl = nullptr;
  uint32_t portid = 0;

  // Opens a NETLINK_NETFILTER socket (in netnsFd's namespace when >= 0), bound to `groups`.
  bool Open(int netnsFd, unsigned groups, int rcvBuf, std::string* error) {
    {
      NetnsGuard guard(netnsFd, error);
      if (guard.failed()) return false;
      nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
      if (nl == nullptr) {
        *error = ErrnoText("mnl_socket_open(NETLINK_NETFILTER)", errno);
        return false;
      }
    }
    if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
      *error = ErrnoText("mnl_socket_bind", errno);
      Close();
      return false;
    }
    portid = mnl_socket_get_portid(nl);
    int on = 1;
    mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &on, sizeof(on));
    int fd = mnl_socket_get_fd(nl);
    if (rcvBuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvBuf, sizeof(rcvBuf)) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvBuf, sizeof(rcvBuf)) < 0) {
      *error = ErrnoText("setsockopt(SO_RCVBUF)", errno);
      Close();
      return false;
    }
    return true;
  }
  void Close() {
    if (nl != nullptr) mnl_socket_close(nl);
    nl = nullptr;
  }
};

// ---------------------------------------------------------------------------------------
class Conntrack : public Napi::ObjectWrap<Conntrack> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Conntrack",
                       {
                           InstanceMethod("dump", &Conntrack::Dump),
                           InstanceMethod("get", &Conntrack::Get),
                           InstanceMethod("create", &Conntrack::Create),
                           InstanceMethod("destroy", &Conntrack::Destroy),
                           InstanceMethod("close", &Conntrack::Close),
                           InstanceMethod("isOpen", &Conntrack::IsOpen),
                           InstanceMethod("counters", &Conntrack::Counters),
                       });
  }

  // new Conntrack({ netns? })
  explicit Conntrack(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Conntrack>(info), sbuf_(kSendBufSize), rbuf_(kRecvBufSize) {
    Napi::Env env = info.Env();
    int nsFd = OpenNetns(env, info.Length() > 0 ? info[0] : env.Undefined());
    if (env.IsExceptionPending()) return;
    std::string error;
    bool ok = sock_.Open(nsFd, 0, 8 << 20, &error);
    if (nsFd >= 0) close(nsFd);
    if (!ok) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return;
    }
    seq_ = static_cast<uint32_t>(time(nullptr));
  }

  ~Conntrack() override { sock_.Close(); }

 private:
  // Sends requests [0, n) (build(i, buf) writes request i with sequence number seq at buf)
  // in chunks, and hands every answer to onMsg(i, nlh) (data) / onAck(i, err) (NLMSG_ERROR,
  // 0 = success). Returns false on a socket error (text in *error).
  bool Transact(size_t n, const std::function<struct nlmsghdr*(size_t, char*, uint32_t)>& build,
                const std::function<void(size_t, const struct nlmsghdr*)>& onMsg,
                const std::function<void(size_t, int)>& onAck, std::string* error) {
    size_t next = 0;
    while (next < n) {
      uint32_t base = seq_;
      size_t len = 0;
      size_t first = next;
      while (next < n && next - first < kPerChunk && len + kMaxMsgSize <= sbuf_.size()) {
        struct nlmsghdr* nlh = build(next, sbuf_.data() + len, base + static_cast<uint32_t>(next - first));
        len += NLMSG_ALIGN(nlh->nlmsg_len);
        next++;
      }
      size_t count = next - first;
      seq_ += static_cast<uint32_t>(count);
      counters_.requests += count;
      if (mnl_socket_sendto(sock_.nl, sbuf_.data(), len) < 0) {
        *error = ErrnoText("sendto(ctnetlink)", errno);
        return false;
      }
      size_t acked = 0;
      while (acked < count) {
        ssize_t r = mnl_socket_recvfrom(sock_.nl, rbuf_.data(), rbuf_.size());
        if (r < 0) {
          if (errno == EINTR) continue;
          *error = ErrnoText("recv(ctnetlink)", errno);
          return false;
        }
        int left = static_cast<int>(r);
        for (auto* m = reinterpret_cast<struct nlmsghdr*>(rbuf_.data()); mnl_nlmsg_ok(m, left);
             m = mnl_nlmsg_next(m, &left)) {
          if (m->nlmsg_pid != sock_.portid && m->nlmsg_pid != 0) continue;
          uint32_t off = m->nlmsg_seq - base;
          if (off >= count) continue;  // an answer to an earlier, abandoned request
          if (m->nlmsg_type == NLMSG_ERROR) {
            auto* e = static_cast<struct nlmsgerr*>(mnl_nlmsg_get_payload(m));
            onAck(first + off, -e->error);
            acked++;
          } else if (m->nlmsg_type != NLMSG_DONE && m->nlmsg_type != NLMSG_NOOP) {
            onMsg(first + off, m);
          }
        }
      }
    }
    return true;
  }

  bool CheckOpen(Napi::Env env) {
    if (sock_.nl != nullptr) return true;
    Napi::Error::New(env, "conntrack socket is closed").ThrowAsJavaScriptException();
    return false;
  }

  // dump({ dst?: string[] }) -> Flow[]: IPv4 TCP/UDP entries, those whose original
  // destination is one of `dst` when given.
  Napi::Value Dump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::unordered_set<uint32_t> dst;
    bool filter = false;
    if (info.Length() > 0 && info[0].IsObject()) {
      Napi::Value d = info[0].As<Napi::Object>().Get("dst");
      if (d.IsArray()) {
        filter = true;
        Napi::Array a = d.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); i++) {
          uint32_t v;
          Napi::Value e = a.Get(i);
          if (!e.IsString() || !ParseIpv4(e.As<Napi::String>().Utf8Value(), &v)) {
            Napi::TypeError::New(env, "dst must be IPv4 address strings").ThrowAsJavaScriptException();
            return env.Undefined();
          }
          dst.insert(v);
        }
      }
    }
    counters_.dumps++;
    uint32_t seq = ++seq_;
    struct nlmsghdr* nlh = PutRequest(sbuf_.data(), IPCTNL_MSG_CT_GET, NLM_F_DUMP, seq);
    if (mnl_socket_sendto(sock_.nl, nlh, nlh->nlmsg_len) < 0) {
      ThrowErrno(env, "sendto(ctnetlink dump)", errno);
      return env.Undefined();
    }
    std::vector<uint32_t> out;
    out.reserve(kWords * 1024);
    struct nf_conntrack* ct = nfct_new();
    bool done = false;
    while (!done) {
      ssize_t r = mnl_socket_recvfrom(sock_.nl, rbuf_.data(), rbuf_.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        nfct_destroy(ct);
        ThrowErrno(env, "recv(ctnetlink dump)", err);
        return env.Undefined();
      }
      int left = static_cast<int>(r);
      for (auto* m = reinterpret_cast<struct nlmsghdr*>(rbuf_.data()); mnl_nlmsg_ok(m, left);
           m = mnl_nlmsg_next(m, &left)) {
        if (m->nlmsg_seq != seq) continue;
        if (m->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (m->nlmsg_type == NLMSG_ERROR) {
          int err = -static_cast<struct nlmsgerr*>(mnl_nlmsg_get_payload(m))->error;
          if (err == 0) continue;
          nfct_destroy(ct);
          ThrowErrno(env, "ctnetlink dump", err);
          return env.Undefined();
        }
        if ((m->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW) continue;
        // A fresh object per entry: nfct_nlmsg_parse only sets what the message carries.
        nfct_destroy(ct);
        ct = nfct_new();
        if (nfct_nlmsg_parse(m, ct) < 0) {
          counters_.malformed++;
          continue;
        }
        if (filter && !dst.count(nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST))) continue;
        PackFlow(ct, &out);
      }
    }
    nfct_destroy(ct);
    return ToTyped(env, out);
  }

  // get(keys) -> (Flow | null)[]: each entry's current state, null when it is not there.
  Napi::Value Get(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsArray()) {
      Napi::TypeError::New(env, "get(keys: Key[])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array in = info[0].As<Napi::Array>();
    std::vector<Key> keys(in.Length());
    for (uint32_t i = 0; i < in.Length(); i++)
      if (!KeyOf(in.Get(i), &keys[i])) return env.Undefined();
    std::vector<uint32_t> out(keys.size() * kWords, 0);
    std::vector<uint32_t> one;
    struct nf_conntrack* ct = nfct_new();
    std::string error;
    bool ok = Transact(
        keys.size(),
        [&](size_t i, char* buf, uint32_t seq) {
          struct nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_GET, NLM_F_ACK, seq);
          struct nf_conntrack* k = nfct_new();
          SetTuple(k, keys[i]);
          nfct_nlmsg_build(nlh, k);
          nfct_destroy(k);
          return nlh;
        },
        [&](size_t i, const struct nlmsghdr* m) {
          if ((m->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW) return;
          nfct_destroy(ct);
          ct = nfct_new();
          if (nfct_nlmsg_parse(m, ct) < 0) {
            counters_.malformed++;
            return;
          }
          one.clear();
          if (PackFlow(ct, &one)) memcpy(&out[i * kWords], one.data(), kWords * sizeof(uint32_t));
        },
        [&](size_t, int) {}, &error);
    nfct_destroy(ct);
    if (!ok) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return ToTyped(env, out);
  }

  struct Spec {
    Key key;
    bool dnat = false, snat = false;
    uint32_t dnatAddr = 0, snatAddr = 0;
    uint16_t dnatPort = 0, snatPort = 0;
    int tcpState = -1;
    uint32_t status = 0, timeout = 0, mark = 0;
  };

  static bool NatOf(Napi::Object o, const char* key, bool* set, uint32_t* addr, uint16_t* port) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return true;
    if (!v.IsObject()) {
      Napi::TypeError::New(o.Env(), std::string(key) + " must be { address, port }").ThrowAsJavaScriptException();
      return false;
    }
    double p;
    if (!GetIpv4(v.As<Napi::Object>(), "address", addr) ||
        !GetInt(v.As<Napi::Object>(), "port", 0, 65535, &p, true))
      return false;
    *port = static_cast<uint16_t>(p);
    *set = true;
    return true;
  }

  static struct nf_conntrack* NewEntry(const Spec& s) {
    struct nf_conntrack* ct = nfct_new();
    SetTuple(ct, s.key);
    // The reply tuple the kernel requires for a create: the inverse of the original; the
    // NAT setup below makes the kernel rewrite it (as `conntrack -I` does).
    nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
    if (s.dnat) {
      nfct_set_attr_u32(ct, ATTR_DNAT_IPV4, s.dnatAddr);
      nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons(s.dnatPort));
    }
    if (s.snat) {
      nfct_set_attr_u32(ct, ATTR_SNAT_IPV4, s.snatAddr);
      nfct_set_attr_u16(ct, ATTR_SNAT_PORT, htons(s.snatPort));
    }
    if (s.key.proto == IPPROTO_TCP && s.tcpState >= 0)
      nfct_set_attr_u8(ct, ATTR_TCP_STATE, static_cast<uint8_t>(s.tcpState));
    nfct_set_attr_u32(ct, ATTR_STATUS, s.status);
    nfct_set_attr_u32(ct, ATTR_TIMEOUT, s.timeout);
    if (s.mark != 0) nfct_set_attr_u32(ct, ATTR_MARK, s.mark);
    return ct;
  }

  // create(entries, { replace? }) -> { created, replaced, existing, errors: [{ index, errno, code }] }
  // Each entry: { protocol, src, dst, sport, dport, dnat?: {address, port}, snat?: {address, port},
  // tcpState?: number, status: number, timeoutS: number, mark?: number }. An entry already there
  // (same original tuple) is counted in `existing` and left alone, or, with `replace`,
  // destroyed and created again with the given state.
  Napi::Value Create(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsArray()) {
      Napi::TypeError::New(env, "create(entries: Entry[], options?: { replace?: boolean })")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    bool replace = info.Length() > 1 && info[1].IsObject() &&
                   info[1].As<Napi::Object>().Get("replace").ToBoolean().Value();
    Napi::Array in = info[0].As<Napi::Array>();
    std::vector<Spec> specs(in.Length());
    for (uint32_t i = 0; i < in.Length(); i++) {
      Spec& s = specs[i];
      if (!KeyOf(in.Get(i), &s.key)) return env.Undefined();
      Napi::Object o = in.Get(i).As<Napi::Object>();
      double state, status, timeout, mark;
      if (!NatOf(o, "dnat", &s.dnat, &s.dnatAddr, &s.dnatPort) ||
          !NatOf(o, "snat", &s.snat, &s.snatAddr, &s.snatPort) ||
          !GetInt(o, "tcpState", 0, 9, &state, false, -1) ||
          !GetInt(o, "status", 0, 4294967295.0, &status, true) ||
          !GetInt(o, "timeoutS", 1, 4294967295.0, &timeout, true) ||
          !GetInt(o, "mark", 0, 4294967295.0, &mark, false, 0))
        return env.Undefined();
      s.tcpState = static_cast<int>(state);
      s.status = static_cast<uint32_t>(status);
      s.timeout = static_cast<uint32_t>(timeout);
      s.mark = static_cast<uint32_t>(mark);
    }
    uint32_t created = 0, replaced = 0, existing = 0;
    std::vector<std::pair<size_t, int>> errors;
    std::vector<size_t> present;
    std::string error;
    auto buildCreate = [&](const std::vector<size_t>* which) {
      return [&, which](size_t i, char* buf, uint32_t seq) {
        const Spec& s = specs[which ? (*which)[i] : i];
        struct nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, seq);
        struct nf_conntrack* ct = NewEntry(s);
        nfct_nlmsg_build(nlh, ct);
        nfct_destroy(ct);
        return nlh;
      };
    };
    auto noMsg = [](size_t, const struct nlmsghdr*) {};
    bool ok = Transact(specs.size(), buildCreate(nullptr), noMsg,
                       [&](size_t i, int err) {
                         if (err == 0) created++;
                         else if (err == EEXIST) present.push_back(i);
                         else errors.emplace_back(i, err);
                       },
                       &error);
    if (ok && replace && !present.empty()) {
      // The copies on a new owner are inert until the end of switch (its packets of the
      // VIP are held): replacing one is safe, and it takes the state the old owner has now.
      ok = Transact(
          present.size(),
          [&](size_t i, char* buf, uint32_t seq) {
            struct nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq);
            struct nf_conntrack* k = nfct_new();
            SetTuple(k, specs[present[i]].key);
            nfct_nlmsg_build(nlh, k);
            nfct_destroy(k);
            return nlh;
          },
          noMsg, [](size_t, int) {}, &error);
      if (ok)
        ok = Transact(present.size(), buildCreate(&present), noMsg,
                      [&](size_t i, int err) {
                        if (err == 0) replaced++;
                        else errors.emplace_back(present[i], err);
                      },
                      &error);
    } else {
      existing = static_cast<uint32_t>(present.size());
    }
    if (!ok) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    counters_.created += created + replaced;
    Napi::Object r = Napi::Object::New(env);
    r.Set("created", static_cast<double>(created));
    r.Set("replaced", static_cast<double>(replaced));
    r.Set("existing", static_cast<double>(existing));
    Napi::Array errs = Napi::Array::New(env, errors.size());
    for (size_t i = 0; i < errors.size(); i++) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("index", static_cast<double>(errors[i].first));
      e.Set("errno", static_cast<double>(errors[i].second));
      const char* name = strerrorname_np(errors[i].second);
      e.Set("code", name ? name : "E?");
      e.Set("message", strerror(errors[i].second));
      errs.Set(static_cast<uint32_t>(i), e);
    }
    r.Set("errors", errs);
    return r;
  }

  // destroy(keys) -> { destroyed, missing }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsArray()) {
      Napi::TypeError::New(env, "destroy(keys: Key[])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array in = info[0].As<Napi::Array>();
    std::vector<Key> keys(in.Length());
    for (uint32_t i = 0; i < in.Length(); i++)
      if (!KeyOf(in.Get(i), &keys[i])) return env.Undefined();
    uint32_t destroyed = 0, missing = 0;
    int otherErr = 0;
    std::string error;
    bool ok = Transact(
        keys.size(),
        [&](size_t i, char* buf, uint32_t seq) {
          struct nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq);
          struct nf_conntrack* k = nfct_new();
          SetTuple(k, keys[i]);
          nfct_nlmsg_build(nlh, k);
          nfct_destroy(k);
          return nlh;
        },
        [](size_t, const struct nlmsghdr*) {},
        [&](size_t, int err) {
          if (err == 0) destroyed++;
          else if (err == ENOENT) missing++;
          else otherErr = err;
        },
        &error);
    if (!ok) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (otherErr != 0) {
      ThrowErrno(env, "conntrack destroy", otherErr);
      return env.Undefined();
    }
    counters_.destroyed += destroyed;
    Napi::Object r = Napi::Object::New(env);
    r.Set("destroyed", static_cast<double>(destroyed));
    r.Set("missing", static_cast<double>(missing));
    return r;
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("requests", static_cast<double>(counters_.requests));
    r.Set("dumps", static_cast<double>(counters_.dumps));
    r.Set("created", static_cast<double>(counters_.created));
    r.Set("destroyed", static_cast<double>(counters_.destroyed));
    r.Set("malformed", static_cast<double>(counters_.malformed));
    return r;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    sock_.Close();
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), sock_.nl != nullptr); }

  NlSocket sock_;
  std::vector<char> sbuf_;
  std::vector<char> rbuf_;
  uint32_t seq_ = 0;
  struct {
    uint64_t requests = 0, dumps = 0, created = 0, destroyed = 0, malformed = 0;
  } counters_;
};

// ---------------------------------------------------------------------------------------
class ConntrackEvents : public Napi::ObjectWrap<ConntrackEvents> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ConntrackEvents",
                       {
                           InstanceMethod("pump", &ConntrackEvents::Pump),
                           InstanceMethod("close", &ConntrackEvents::Close),
                           InstanceMethod("counters", &ConntrackEvents::Counters),
                       });
  }

  // new ConntrackEvents({ netns?, dst?: string[], rcvBufBytes? }, onEvents(events))
  explicit ConntrackEvents(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<ConntrackEvents>(info), rbuf_(kRecvBufSize) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "ConntrackEvents(options: object, onEvents: function)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object opts = info[0].As<Napi::Object>();
    Napi::Value d = opts.Get("dst");
    if (d.IsArray()) {
      filter_ = true;
      Napi::Array a = d.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        uint32_t v;
        Napi::Value e = a.Get(i);
        if (!e.IsString() || !ParseIpv4(e.As<Napi::String>().Utf8Value(), &v)) {
          Napi::TypeError::New(env, "dst must be IPv4 address strings").ThrowAsJavaScriptException();
          return;
        }
        dst_.insert(v);
      }
    }
    double rcv;
    if (!GetInt(opts, "rcvBufBytes", 0, 1 << 30, &rcv, false, 16 << 20)) return;
    int nsFd = OpenNetns(env, opts);
    if (env.IsExceptionPending()) return;
    std::string error;
    bool ok = sock_.Open(
        nsFd, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY,
        static_cast<int>(rcv), &error);
    if (nsFd >= 0) close(nsFd);
    if (!ok) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return;
    }
    int off = 0;
    mnl_socket_setsockopt(sock_.nl, NETLINK_NO_ENOBUFS, &off, sizeof(off));
    int fd = mnl_socket_get_fd(sock_.nl);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
      sock_.Close();
      ThrowErrno(env, "fcntl(O_NONBLOCK)", errno);
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      sock_.Close();
      Napi::Error::New(env, "cannot get the uv loop").ThrowAsJavaScriptException();
      return;
    }
    poll_ = new uv_poll_t;
    poll_->data = this;
    if (uv_poll_init(loop, poll_, fd) != 0) {
      delete poll_;
      poll_ = nullptr;
      sock_.Close();
      Napi::Error::New(env, "uv_poll_init failed").ThrowAsJavaScriptException();
      return;
    }
    uv_poll_start(poll_, UV_READABLE, &ConntrackEvents::OnPoll);
    onEvents_ = Napi::Persistent(info[1].As<Napi::Function>());
    asyncContext_ = new Napi::AsyncContext(env, "tandem-netlink-ct-events");
    Ref();  // alive while subscribed, even if JS drops the wrapper
    open_ = true;
  }

  ~ConntrackEvents() override {
    Shutdown(false);
    delete asyncContext_;
  }

 private:
  void Shutdown(bool unref) {
    if (!open_) return;
    open_ = false;
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    sock_.Close();
    onEvents_.Reset();
    if (unref) Unref();
  }

  static void OnPoll(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<ConntrackEvents*>(handle->data);
    if (status < 0) return;
    if (!self->open_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Uint32Array batch = self->Drain(env);
    if (batch.ElementLength() == 0 && !self->lostSinceCall_) return;
    self->lostSinceCall_ = false;
    napi_value result;
    napi_value argv[] = {batch};
    napi_status st = napi_make_callback(env, static_cast<napi_async_context>(*self->asyncContext_), self->Value(),
                                        self->onEvents_.Value(), 1, argv, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }

  // Reads everything queued now (bounded): per event its type (1 new, 2 update, 3 destroy)
  // then the packed entry (kWords + 1 u32 per event).
  Napi::Uint32Array Drain(Napi::Env env) {
    std::vector<uint32_t> batch;
    struct nf_conntrack* ct = nullptr;
    for (int round = 0; round < 4096; round++) {
      ssize_t r = recv(mnl_socket_get_fd(sock_.nl), rbuf_.data(), rbuf_.size(), MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          enobufs_++;  // the kernel dropped events for this socket
          lostSinceCall_ = true;
          continue;
        }
        break;  // EAGAIN: nothing more
      }
      int left = static_cast<int>(r);
      for (auto* m = reinterpret_cast<struct nlmsghdr*>(rbuf_.data()); mnl_nlmsg_ok(m, left);
           m = mnl_nlmsg_next(m, &left)) {
        uint8_t type = m->nlmsg_type & 0xff;
        if (NFNL_SUBSYS_ID(m->nlmsg_type) != NFNL_SUBSYS_CTNETLINK ||
            (type != IPCTNL_MSG_CT_NEW && type != IPCTNL_MSG_CT_DELETE))
          continue;
        events_++;
        if (ct != nullptr) nfct_destroy(ct);
        ct = nfct_new();
        if (nfct_nlmsg_parse(m, ct) < 0) {
          malformed_++;
          continue;
        }
        if (filter_ && !dst_.count(nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST))) continue;
        uint32_t kind = type == IPCTNL_MSG_CT_DELETE ? 3 : (m->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) ? 1 : 2;
        batch.push_back(kind);
        if (!PackFlow(ct, &batch)) {
          batch.pop_back();
          continue;
        }
        delivered_++;
      }
    }
    if (ct != nullptr) nfct_destroy(ct);
    return ToTyped(env, batch);
  }

  // pump() -> events queued right now (the same objects onEvents would get), synchronously.
  Napi::Value Pump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Uint32Array::New(env, 0);
    return Drain(env);
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("events", static_cast<double>(events_));
    r.Set("delivered", static_cast<double>(delivered_));
    r.Set("enobufs", static_cast<double>(enobufs_));
    r.Set("malformed", static_cast<double>(malformed_));
    return r;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown(true);
    return info.Env().Undefined();
  }

  NlSocket sock_;
  std::vector<char> rbuf_;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onEvents_;
  Napi::AsyncContext* asyncContext_ = nullptr;
  bool open_ = false;
  bool filter_ = false;
  bool lostSinceCall_ = false;
  std::unordered_set<uint32_t> dst_;
  uint64_t events_ = 0, delivered_ = 0, enobufs_ = 0, malformed_ = 0;
};

}  // namespace

Napi::Function DefineConntrack(Napi::Env env) { return Conntrack::Define(env); }
Napi::Function DefineConntrackEvents(Napi::Env env) { return ConntrackEvents::Define(env); }

}  // namespace tandem
