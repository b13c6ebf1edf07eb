// tandem-nftables CounterReader: named nftables counters read straight from the kernel
// with libnftnl (NFT_MSG_GETOBJ), on a netlink socket of its own.
//
// Why not libnftables for this: `list counter ip T C` through a libnftables context first
// rebuilds its cache of the tables, then prints JSON that the caller parses again. That
// costs ~0.5-1 ms per read on a loaded 2-core host, and through the thread pool (where the
// agents had to move it so it would not stall a hand-off) the p99 was 4 ms (`tandem bench
// nft`, issue 11). One GETOBJ request is one netlink round trip of a few tens of
// microseconds, cheap enough to stay synchronous on the event loop.
//
// read(family, table, name) -> { packets, bytes } or throws (ENOENT: no such counter);
// readAll(family, table) -> [{ name, packets, bytes }] (one dump filtered by table and type).
// Counter values above 2^53 are refused rather than rounded.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
}

#include <cstdint>
#include <string>
#include <vector>

#include "../../common/netns_guard.h"
#include "netns_option.h"

namespace {

std::string ErrnoText(const std::string& what, int err) {
  return what + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
}

struct CounterValue {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

int FamilyOf(const std::string& family) {
  if (family == "ip") return NFPROTO_IPV4;
  if (family == "ip6") return NFPROTO_IPV6;
  if (family == "inet") return NFPROTO_INET;
  if (family == "arp") return NFPROTO_ARP;
  if (family == "bridge") return NFPROTO_BRIDGE;
  if (family == "netdev") return NFPROTO_NETDEV;
  return -1;
}

int OnObject(const struct nlmsghdr* nlh, void* data) {
  auto* out = static_cast<std::vector<CounterValue>*>(data);
  struct nftnl_obj* obj = nftnl_obj_alloc();
  if (obj == nullptr) return MNL_CB_ERROR;
  if (nftnl_obj_nlmsg_parse(nlh, obj) < 0) {
    nftnl_obj_free(obj);
    return MNL_CB_ERROR;
  }
  if (nftnl_obj_get_u32(obj, NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER) {
    CounterValue v;
    const char* name = nftnl_obj_get_str(obj, NFTNL_OBJ_NAME);
    v.name = name ? name : "";
    v.packets = nftnl_obj_get_u64(obj, NFTNL_OBJ_CTR_PKTS);
    v.bytes = nftnl_obj_get_u64(obj, NFTNL_OBJ_CTR_BYTES);
    out->push_back(v);
  }
  nftnl_obj_free(obj);
  return MNL_CB_OK;
}

class CounterReader : public Napi::ObjectWrap<CounterReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CounterReader",
                       {
                           InstanceMethod("read", &CounterReader::Read),
                           InstanceMethod("readAll", &CounterReader::ReadAll),
                           InstanceMethod("close", &CounterReader::Close),
                           InstanceMethod("isOpen", &CounterReader::IsOpen),
                       });
  }

  // new CounterReader({ netns?: string })
  explicit CounterReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CounterReader>(info) {
    Napi::Env env = info.Env();
    bool failed = false;
    int target = OpenNetnsOption(info, &failed);
    if (failed) return;
    std::string error;
    {
      tandem::NetnsGuard guard(target, &error);
      if (!guard.failed()) {
        nl_ = mnl_socket_open(NETLINK_NETFILTER);
        if (nl_ == nullptr) error = ErrnoText("mnl_socket_open(NETLINK_NETFILTER)", errno);
      }
    }
    if (target >= 0) close(target);
    if (nl_ != nullptr && mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
      error = ErrnoText("mnl_socket_bind", errno);
      Free();
    }
    if (nl_ == nullptr) {
      Napi::Error::New(env, error.empty() ? "netlink socket not opened" : error).ThrowAsJavaScriptException();
      return;
    }
    portid_ = mnl_socket_get_portid(nl_);
    seq_ = static_cast<uint32_t>(time(nullptr));
  }

  ~CounterReader() override { Free(); }

 private:
  void Free() {
    if (nl_ != nullptr) {
      mnl_socket_close(nl_);
      nl_ = nullptr;
    }
  }

  // One request, its replies until the ACK or NLMSG_DONE. Returns 0 or an errno.
  int Exchange(uint16_t flags, int family, const std::string& table, const std::string* name,
               std::vector<CounterValue>* out) {
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    uint32_t seq = ++seq_;
    struct nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETOBJ, static_cast<uint16_t>(family), flags, seq);
    struct nftnl_obj* obj = nftnl_obj_alloc();
    if (obj == nullptr) return ENOMEM;
    nftnl_obj_set_str(obj, NFTNL_OBJ_TABLE, table.c_str());
    if (name != nullptr) nftnl_obj_set_str(obj, NFTNL_OBJ_NAME, name->c_str());
    nftnl_obj_set_u32(obj, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
    nftnl_obj_nlmsg_build_payload(nlh, obj);
    nftnl_obj_free(obj);
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return errno;
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
      if (n < 0) return errno;
      int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid_, OnObject, out);
      if (r < 0) return errno != 0 ? errno : EPROTO;
      if (r == MNL_CB_STOP) return 0;
    }
  }

  bool Check(const Napi::CallbackInfo& info, size_t args, int* family) {
    Napi::Env env = info.Env();
    if (nl_ == nullptr) {
      Napi::Error::New(env, "counter reader is closed").ThrowAsJavaScriptException();
      return false;
    }
    for (size_t i = 0; i < args; i++) {
      if (info.Length() <= i || !info[i].IsString()) {
        Napi::TypeError::New(env, args == 3 ? "read(family: string, table: string, name: string)"
                                            : "readAll(family: string, table: string)")
            .ThrowAsJavaScriptException();
        return false;
      }
    }
    std::string f = info[0].As<Napi::String>().Utf8Value();
    *family = FamilyOf(f);
    if (*family < 0) {
      Napi::TypeError::New(env, "unknown nftables family \"" + f + "\" (ip, ip6, inet, arp, bridge, netdev)")
          .ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  static bool Put(Napi::Env env, Napi::Object o, const CounterValue& v) {
    const uint64_t kMaxSafe = (uint64_t{1} << 53) - 1;
    if (v.packets > kMaxSafe || v.bytes > kMaxSafe) {
      Napi::RangeError::New(env, "counter " + v.name + " exceeds 2^53").ThrowAsJavaScriptException();
      return false;
    }
    o.Set("name", Napi::String::New(env, v.name));
    o.Set("packets", Napi::Number::New(env, static_cast<double>(v.packets)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(v.bytes)));
    return true;
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int family = 0;
    if (!Check(info, 3, &family)) return env.Undefined();
    std::string table = info[1].As<Napi::String>().Utf8Value();
    std::string name = info[2].As<Napi::String>().Utf8Value();
    std::vector<CounterValue> out;
    int err = Exchange(NLM_F_ACK, family, table, &name, &out);
    if (err != 0 || out.empty()) {
      Napi::Error e = Napi::Error::New(
          env, ErrnoText("read counter " + info[0].As<Napi::String>().Utf8Value() + " " + table + " " + name,
                         err != 0 ? err : ENOENT));
      e.Set("errno", Napi::Number::New(env, err != 0 ? err : ENOENT));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = Napi::Object::New(env);
    if (!Put(env, o, out.front())) return env.Undefined();
    return o;
  }

  Napi::Value ReadAll(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int family = 0;
    if (!Check(info, 2, &family)) return env.Undefined();
    std::string table = info[1].As<Napi::String>().Utf8Value();
    std::vector<CounterValue> out;
    int err = Exchange(NLM_F_DUMP, family, table, nullptr, &out);
    if (err != 0) {
      Napi::Error e = Napi::Error::New(
          env, ErrnoText("read counters of " + info[0].As<Napi::String>().Utf8Value() + " " + table, err));
      e.Set("errno", Napi::Number::New(env, err));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array arr = Napi::Array::New(env, out.size());
    for (size_t i = 0; i < out.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      if (!Put(env, o, out[i])) return env.Undefined();
      arr.Set(static_cast<uint32_t>(i), o);
    }
    return arr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), nl_ != nullptr); }

  struct mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
};

}  // namespace

Napi::Function DefineCounterReader(Napi::Env env) { return CounterReader::Define(env); }
