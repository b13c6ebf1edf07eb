// tandem-nfqueue: one NFQUEUE queue per Queue object, bound over a netlink socket
// with libmnl + libnetfilter_queue's nlmsg helpers (the library's current API; the
// older nfq_open/nfq_handle_packet API hides the socket and its errors).
//
// Event-loop integration: a uv_poll handle watches the netlink socket; when it is
// readable we recvmmsg() with MSG_DONTWAIT until EAGAIN (bounded per wake-up so other
// handles are not starved) and hand the packets to JavaScript as one array per
// wake-up (one JS call per batch, not per packet). No threads. Verdicts given while
// that JS call runs are collected and sent in one sendto() when it returns (in the
// order they were given); verdicts given at any other time are sent at once.
//
// Overflow is visible: NETLINK_NO_ENOBUFS is explicitly off, so when the socket's
// receive buffer overflows recv() fails with ENOBUFS and we count it; packets the
// kernel could not queue (queue full) show in /proc/net/netfilter/nfnetlink_queue.
//
// Namespaces: `netns` opens the socket inside another network namespace (setns on
// the calling thread, socket(), setns back). A socket keeps the namespace it was
// created in, so a controller in the root namespace can serve a lab namespace's
// queue; an agent already running inside its namespace simply omits `netns`.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "../../common/netns_guard.h"

namespace {

// MNL_SOCKET_BUFFER_SIZE is a sysconf() call (not constexpr); fixed sizes instead.
constexpr size_t kMsgBufSize = 8192;
constexpr size_t kRecvBufSize = 0xffff + kMsgBufSize;
constexpr int kSlots = 32;                // datagrams per recvmmsg()
constexpr int kMaxRoundsPerWake = 32;     // recvmmsg() calls per wake-up at most
constexpr size_t kVerdictBufSize = 64 * 1024;

std::string ErrnoText(const char* what, int err) {
  return std::string(what) + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
}

using tandem::NetnsGuard;

class Queue : public Napi::ObjectWrap<Queue> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Queue",
                       {
                           InstanceMethod("verdict", &Queue::Verdict),
                           InstanceMethod("verdictMany", &Queue::VerdictMany),
                           InstanceMethod("verdictUpTo", &Queue::VerdictUpTo),
                           InstanceMethod("pump", &Queue::Pump),
                           InstanceMethod("close", &Queue::Close),
                           InstanceMethod("counters", &Queue::Counters),
                           InstanceMethod("readProcStats", &Queue::ReadProcStats),
                       });
  }

  // new Queue(queueNum, { maxLen, copyRange, rcvBufBytes, netns, failOpen, gso }, onBatch)
  explicit Queue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Queue>(info), rbuf_(kRecvBufSize) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsObject() || !info[2].IsFunction()) {
      Napi::TypeError::New(env, "Queue(queueNum: number, options: object, onBatch: function)")
          .ThrowAsJavaScriptException();
      return;
    }
    double qn = info[0].As<Napi::Number>().DoubleValue();
    if (!(qn >= 0 && qn <= 65535) || qn != static_cast<uint32_t>(qn)) {
      Napi::RangeError::New(env, "queueNum must be an integer 0..65535, got " + std::to_string(qn))
          .ThrowAsJavaScriptException();
      return;
    }
    queueNum_ = static_cast<uint32_t>(qn);
    Napi::Object opts = info[1].As<Napi::Object>();
    uint32_t maxLen = OptU32(opts, "maxLen", 1024);
    uint32_t copyRange = OptU32(opts, "copyRange", 0xffff);
    uint32_t rcvBuf = OptU32(opts, "rcvBufBytes", 0);
    bool failOpen = OptBool(opts, "failOpen", false);
    bool gso = OptBool(opts, "gso", false);
    if (env.IsExceptionPending()) return;

    Napi::Value ns = opts.Get("netns");
    if (ns.IsString()) {
      std::string path = ns.As<Napi::String>().Utf8Value();
      if (path.find('/') == std::string::npos) path = "/var/run/netns/" + path;
      nsFd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (nsFd_ < 0) {
        Napi::Error::New(env, ErrnoText(("open netns " + path).c_str(), errno)).ThrowAsJavaScriptException();
        return;
      }
    }

    std::string error;
    {
      NetnsGuard guard(nsFd_, &error);
      if (guard.failed()) {
        Napi::Error::New(env, error).ThrowAsJavaScriptException();
        return;
      }
      nl_ = mnl_socket_open(NETLINK_NETFILTER);
      if (nl_ == nullptr) error = ErrnoText("mnl_socket_open(NETLINK_NETFILTER)", errno);
    }
    if (nl_ == nullptr) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return;
    }
    fcntl(mnl_socket_get_fd(nl_), F_SETFD, FD_CLOEXEC);
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
      ThrowAndClose(env, ErrnoText("mnl_socket_bind", errno));
      return;
    }
    portid_ = mnl_socket_get_portid(nl_);
    int fd = mnl_socket_get_fd(nl_);
    if (rcvBuf > 0) {
      int v = static_cast<int>(rcvBuf);
      // SO_RCVBUFFORCE (root) is not capped by net.core.rmem_max.
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0 &&
          setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0) {
        ThrowAndClose(env, ErrnoText("setsockopt(SO_RCVBUF)", errno));
        return;
      }
    }
    int off = 0;
    mnl_socket_setsockopt(nl_, NETLINK_NO_ENOBUFS, &off, sizeof(off));

    // Configure: bind, copy mode + range + flags, max length; each acknowledged so
    // "queue already bound by another process" (EBUSY) surfaces here.
    std::vector<char> buf(kMsgBufSize);
    struct nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queueNum_);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    if (!SendAcked(nlh, &error)) {
      // EPERM/EBUSY here means another socket (process) has this queue number.
      ThrowAndClose(env, "bind queue " + std::to_string(queueNum_) + ": " + error +
                             "; is the queue number already bound by another process?");
      return;
    }
    nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queueNum_);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, static_cast<int>(copyRange));
    nfq_nlmsg_cfg_put_qmaxlen(nlh, maxLen);
    uint32_t flags = (failOpen ? NFQA_CFG_F_FAIL_OPEN : 0) | (gso ? NFQA_CFG_F_GSO : 0);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
    if (!SendAcked(nlh, &error)) {
      ThrowAndClose(env, "configure queue " + std::to_string(queueNum_) + ": " + error);
      return;
    }

    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
      ThrowAndClose(env, ErrnoText("fcntl(O_NONBLOCK)", errno));
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      ThrowAndClose(env, "cannot get the uv loop");
      return;
    }
    poll_ = new uv_poll_t;
    poll_->data = this;
    if (uv_poll_init(loop, poll_, fd) != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowAndClose(env, "uv_poll_init failed");
      return;
    }
    uv_poll_start(poll_, UV_READABLE, &Queue::OnPoll);
    onBatch_ = Napi::Persistent(info[2].As<Napi::Function>());
    asyncContext_ = new Napi::AsyncContext(env, "tandem-nfqueue");
    Ref();  // stay alive while the socket is open, even if JS drops the wrapper
    open_ = true;
  }

  ~Queue() override {
    if (open_) Shutdown(false);
    if (nsFd_ >= 0) close(nsFd_);
    delete asyncContext_;
  }

 private:
  static uint32_t OptU32(Napi::Object opts, const char* key, uint32_t dflt) {
    Napi::Value v = opts.Get(key);
    if (v.IsUndefined() || v.IsNull()) return dflt;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      Napi::RangeError::New(opts.Env(), std::string("option ") + key + " must be a non-negative integer")
          .ThrowAsJavaScriptException();
      return dflt;
    }
    return static_cast<uint32_t>(d);
  }
  static bool OptBool(Napi::Object opts, const char* key, bool dflt) {
    Napi::Value v = opts.Get(key);
    if (v.IsUndefined() || v.IsNull()) return dflt;
    return v.ToBoolean().Value();
  }

  void ThrowAndClose(Napi::Env env, const std::string& msg) {
    if (nl_ != nullptr) {
      mnl_socket_close(nl_);
      nl_ = nullptr;
    }
    Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  }

  // Sends one request with NLM_F_ACK and waits (blocking socket) for its ack.
  // Queue packets that arrive meanwhile are kept for the first pump().
  bool SendAcked(struct nlmsghdr* nlh, std::string* error) {
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = ++seq_;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) {
      *error = ErrnoText("sendto", errno);
      return false;
    }
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(nl_, rbuf_.data(), rbuf_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        *error = ErrnoText("recv ack", errno);
        return false;
      }
      int len = static_cast<int>(n);
      for (auto* m = reinterpret_cast<struct nlmsghdr*>(rbuf_.data()); mnl_nlmsg_ok(m, len);
           m = mnl_nlmsg_next(m, &len)) {
        if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_seq == seq_) {
          auto* e = static_cast<struct nlmsgerr*>(mnl_nlmsg_get_payload(m));
          if (e->error != 0) {
            *error = strerror(-e->error) + std::string(" (errno ") + std::to_string(-e->error) + ")";
            return false;
          }
          return true;
        }
        early_.emplace_back(reinterpret_cast<char*>(m), reinterpret_cast<char*>(m) + m->nlmsg_len);
      }
    }
  }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<Queue*>(handle->data);
    if (status < 0) {
      self->lastErrno_ = -status;
      return;
    }
    self->Drain();
  }

  void Drain() {
    if (!open_) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array batch = Napi::Array::New(env);
    uint32_t count = 0;
    for (auto& m : early_) {
      int len = static_cast<int>(m.size());
      ParseDatagram(env, m.data(), len, batch, &count);
    }
    early_.clear();
    int fd = mnl_socket_get_fd(nl_);
    struct mmsghdr msgs[kSlots];
    struct iovec iov[kSlots];
    for (int round = 0; round < kMaxRoundsPerWake; round++) {
      memset(msgs, 0, sizeof(msgs));
      for (int i = 0; i < kSlots; i++) {
        iov[i].iov_base = slab_.data() + static_cast<size_t>(i) * kRecvBufSize;
        iov[i].iov_len = kRecvBufSize;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, msgs, kSlots, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          enobufs_++;  // the socket buffer overflowed: the kernel dropped netlink messages
          continue;
        }
        lastErrno_ = errno;
        break;
      }
      for (int i = 0; i < n; i++) {
        datagrams_++;
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
          malformed_++;
          continue;
        }
        ParseDatagram(env, static_cast<char*>(iov[i].iov_base), static_cast<int>(msgs[i].msg_len), batch, &count);
      }
      if (n < kSlots) break;
    }
    if (count == 0) return;
    batches_++;
    napi_value result;
    napi_value argv[] = {batch};
    inBatch_ = true;
    napi_status st = napi_make_callback(env, asyncContext_ ? static_cast<napi_async_context>(*asyncContext_) : nullptr,
                                        Value(), onBatch_.Value(), 1, argv, &result);
    inBatch_ = false;
    FlushPending();
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }

  // Sends the verdicts collected during a batch callback (no JS frame: errors are counted).
  void FlushPending() {
    if (pendingLen_ == 0 || nl_ == nullptr) {
      pendingLen_ = 0;
      return;
    }
    if (mnl_socket_sendto(nl_, pending_.data(), pendingLen_) < 0) {
      sendErrors_++;
      lastErrno_ = errno;
    }
    pendingLen_ = 0;
  }

  // Room for one more verdict message (without payload) in the pending buffer.
  char* PendingSlot() {
    if (pendingLen_ + 128 > pending_.size()) FlushPending();
    return pending_.data() + pendingLen_;
  }

  void ParseDatagram(Napi::Env env, char* data, int len, Napi::Array& batch, uint32_t* count) {
    for (auto* m = reinterpret_cast<struct nlmsghdr*>(data); mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
      if (m->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<struct nlmsgerr*>(mnl_nlmsg_get_payload(m));
        if (e->error != 0) {
          verdictErrors_++;  // e.g. ENOENT: verdict for an id the kernel no longer holds
          lastErrno_ = -e->error;
        }
        continue;
      }
      if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_NOOP) continue;
      if (NFNL_SUBSYS_ID(m->nlmsg_type) != NFNL_SUBSYS_QUEUE || NFNL_MSG_TYPE(m->nlmsg_type) != NFQNL_MSG_PACKET) {
        malformed_++;
        continue;
      }
      struct nlattr* attr[NFQA_MAX + 1] = {};
      if (nfq_nlmsg_parse(m, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr ||
          mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr)) {
        malformed_++;
        continue;
      }
      auto* ph = static_cast<struct nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
      auto* nfg = static_cast<struct nfgenmsg*>(mnl_nlmsg_get_payload(m));
      Napi::Object pkt = Napi::Object::New(env);
      pkt.Set("id", Napi::Number::New(env, ntohl(ph->packet_id)));
      pkt.Set("queue", Napi::Number::New(env, ntohs(nfg->res_id)));
      pkt.Set("hwProtocol", Napi::Number::New(env, ntohs(ph->hw_protocol)));
      pkt.Set("hook", Napi::Number::New(env, ph->hook));
      pkt.Set("mark", Napi::Number::New(env, attr[NFQA_MARK] ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK])) : 0));
      if (attr[NFQA_IFINDEX_INDEV])
        pkt.Set("indev", Napi::Number::New(env, ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]))));
      if (attr[NFQA_IFINDEX_OUTDEV])
        pkt.Set("outdev", Napi::Number::New(env, ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV]))));
      if (attr[NFQA_TIMESTAMP] &&
          mnl_attr_get_payload_len(attr[NFQA_TIMESTAMP]) >= sizeof(struct nfqnl_msg_packet_timestamp)) {
        auto* ts = static_cast<struct nfqnl_msg_packet_timestamp*>(mnl_attr_get_payload(attr[NFQA_TIMESTAMP]));
        uint64_t ns = be64toh(ts->sec) * 1000000000ULL + be64toh(ts->usec) * 1000ULL;
        pkt.Set("timestampNs", Napi::BigInt::New(env, ns));
      }
      uint32_t plen = 0;
      if (attr[NFQA_PAYLOAD]) {
        plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
        pkt.Set("payload", Napi::Buffer<uint8_t>::Copy(
                               env, static_cast<uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD])), plen));
      } else {
        pkt.Set("payload", Napi::Buffer<uint8_t>::New(env, 0));
      }
      if (attr[NFQA_CAP_LEN]) {
        uint32_t orig = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]));
        if (orig != plen) pkt.Set("originalLength", Napi::Number::New(env, orig));
      }
      if (attr[NFQA_SKB_INFO]) {
        uint32_t info = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO]));
        if (info & NFQA_SKB_GSO) pkt.Set("gso", Napi::Boolean::New(env, true));
      }
      batch.Set((*count)++, pkt);
      received_++;
    }
  }

  bool CheckOpen(Napi::Env env) {
    if (open_) return true;
    Napi::Error::New(env, "queue " + std::to_string(queueNum_) + " is closed").ThrowAsJavaScriptException();
    return false;
  }

  static int ParseVerdict(Napi::Value v) {
    if (!v.IsNumber()) return -1;
    int n = v.As<Napi::Number>().Int32Value();
    return (n == NF_ACCEPT || n == NF_DROP || n == NF_REPEAT) ? n : -1;
  }

  bool Send(Napi::Env env, const void* buf, size_t len) {
    if (mnl_socket_sendto(nl_, buf, len) < 0) {
      Napi::Error::New(env, ErrnoText("nfqueue verdict sendto", errno)).ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // verdict(id, verdict /*0 drop, 1 accept, 4 repeat*/, mark?: number, payload?: Buffer)
  Napi::Value Verdict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    int verdict = ParseVerdict(info[1]);
    if (!info[0].IsNumber() || verdict < 0) {
      Napi::TypeError::New(env, "verdict(id: number, verdict: 0|1|4, mark?, payload?)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    size_t extra = 0;
    Napi::Buffer<uint8_t> payload;
    if (info.Length() > 3 && info[3].IsBuffer()) {
      payload = info[3].As<Napi::Buffer<uint8_t>>();
      extra = payload.Length();
    }
    bool hasMark = info.Length() > 2 && info[2].IsNumber();
    uint32_t mark = hasMark ? info[2].As<Napi::Number>().Uint32Value() : 0;
    if (inBatch_ && extra == 0) {
      struct nlmsghdr* nlh = nfq_nlmsg_put(PendingSlot(), NFQNL_MSG_VERDICT, queueNum_);
      nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), verdict);
      if (hasMark) nfq_nlmsg_verdict_put_mark(nlh, mark);
      pendingLen_ += NLMSG_ALIGN(nlh->nlmsg_len);
      verdicts_++;
      return env.Undefined();
    }
    FlushPending();  // keep the order of verdicts given earlier in this batch
    std::vector<char> buf(kMsgBufSize + extra);
    struct nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_VERDICT, queueNum_);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), verdict);
    if (hasMark) nfq_nlmsg_verdict_put_mark(nlh, mark);
    if (extra > 0) nfq_nlmsg_verdict_put_pkt(nlh, payload.Data(), static_cast<uint32_t>(extra));
    if (Send(env, nlh, nlh->nlmsg_len)) verdicts_++;
    return env.Undefined();
  }

  // verdictMany(ids: Uint32Array, verdict, mark?): one verdict message per id, packed
  // into as few sendto() calls as fit in 64 KiB. Order of ids is preserved.
  Napi::Value VerdictMany(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    int verdict = ParseVerdict(info[1]);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        verdict < 0) {
      Napi::TypeError::New(env, "verdictMany(ids: Uint32Array, verdict: 0|1|4, mark?)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
    bool hasMark = info.Length() > 2 && info[2].IsNumber();
    uint32_t mark = hasMark ? info[2].As<Napi::Number>().Uint32Value() : 0;
    FlushPending();  // verdicts given earlier in this batch go first
    std::vector<char> buf(kVerdictBufSize);
    size_t used = 0;
    for (size_t i = 0; i < ids.ElementLength(); i++) {
      if (used + 128 > buf.size()) {
        if (!Send(env, buf.data(), used)) return env.Undefined();
        used = 0;
      }
      struct nlmsghdr* nlh = nfq_nlmsg_put(buf.data() + used, NFQNL_MSG_VERDICT, queueNum_);
      nfq_nlmsg_verdict_put(nlh, static_cast<int>(ids[i]), verdict);
      if (hasMark) nfq_nlmsg_verdict_put_mark(nlh, mark);
      used += NLMSG_ALIGN(nlh->nlmsg_len);
      verdicts_++;
    }
    if (used > 0) Send(env, buf.data(), used);
    return env.Undefined();
  }

  // verdictUpTo(id, verdict, mark?): the kernel's batch verdict (NFQNL_MSG_VERDICT_BATCH):
  // applies to every packet still queued whose id <= id (ids are a per-queue sequence).
  Napi::Value VerdictUpTo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    int verdict = ParseVerdict(info[1]);
    if (!info[0].IsNumber() || verdict < 0) {
      Napi::TypeError::New(env, "verdictUpTo(id: number, verdict: 0|1|4, mark?)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    FlushPending();
    std::vector<char> buf(kMsgBufSize);
    struct nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_VERDICT_BATCH, queueNum_);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(info[0].As<Napi::Number>().Uint32Value()), verdict);
    if (info.Length() > 2 && info[2].IsNumber()) nfq_nlmsg_verdict_put_mark(nlh, info[2].As<Napi::Number>().Uint32Value());
    if (Send(env, nlh, nlh->nlmsg_len)) verdicts_++;
    return env.Undefined();
  }

  // Reads whatever is pending now (also packets that arrived while configuring).
  Napi::Value Pump(const Napi::CallbackInfo& info) {
    Drain();
    return info.Env().Undefined();
  }

  void Shutdown(bool unbind) {
    FlushPending();
    open_ = false;
    if (unbind && nl_ != nullptr) {
      // Unbinding makes the kernel drop the packets still queued (no verdict).
      char buf[kMsgBufSize];
      struct nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queueNum_);
      nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
      mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len);
    }
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (nl_ != nullptr) {
      mnl_socket_close(nl_);
      nl_ = nullptr;
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (open_) {
      Shutdown(true);
      onBatch_.Reset();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("queueNum", Napi::Number::New(env, queueNum_));
    o.Set("portid", Napi::Number::New(env, portid_));
    o.Set("open", Napi::Boolean::New(env, open_));
    o.Set("received", Napi::Number::New(env, static_cast<double>(received_)));
    o.Set("datagrams", Napi::Number::New(env, static_cast<double>(datagrams_)));
    o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
    o.Set("verdicts", Napi::Number::New(env, static_cast<double>(verdicts_)));
    o.Set("verdictErrors", Napi::Number::New(env, static_cast<double>(verdictErrors_)));
    o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(sendErrors_)));
    o.Set("enobufs", Napi::Number::New(env, static_cast<double>(enobufs_)));
    o.Set("malformed", Napi::Number::New(env, static_cast<double>(malformed_)));
    o.Set("lastErrno", Napi::Number::New(env, lastErrno_));
    return o;
  }

  // The text of /proc/net/netfilter/nfnetlink_queue as seen from the queue's netns.
  Napi::Value ReadProcStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string error;
    std::string text;
    {
      NetnsGuard guard(nsFd_, &error);
      if (!guard.failed()) {
        FILE* f = fopen("/proc/thread-self/net/netfilter/nfnetlink_queue", "re");
        if (f == nullptr) {
          error = ErrnoText("open /proc/net/netfilter/nfnetlink_queue", errno);
        } else {
          char chunk[4096];
          size_t n;
          while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) text.append(chunk, n);
          fclose(f);
        }
      }
    }
    if (!error.empty()) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::String::New(env, text);
  }

  struct mnl_socket* nl_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onBatch_;
  Napi::AsyncContext* asyncContext_ = nullptr;
  std::vector<char> rbuf_;
  std::vector<char> slab_ = std::vector<char>(static_cast<size_t>(kSlots) * kRecvBufSize);
  std::vector<char> pending_ = std::vector<char>(kVerdictBufSize);
  size_t pendingLen_ = 0;
  bool inBatch_ = false;
  std::vector<std::vector<char>> early_;
  uint32_t queueNum_ = 0;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  int nsFd_ = -1;
  bool open_ = false;
  uint64_t received_ = 0, datagrams_ = 0, batches_ = 0, verdicts_ = 0, verdictErrors_ = 0, sendErrors_ = 0,
           enobufs_ = 0, malformed_ = 0;
  int lastErrno_ = 0;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Queue", Queue::Define(env));
  exports.Set("NF_DROP", Napi::Number::New(env, NF_DROP));
  exports.Set("NF_ACCEPT", Napi::Number::New(env, NF_ACCEPT));
  exports.Set("NF_REPEAT", Napi::Number::New(env, NF_REPEAT));
  return exports;
}

}  // namespace

NODE_API_MODULE(tandem_nfqueue, Init)
