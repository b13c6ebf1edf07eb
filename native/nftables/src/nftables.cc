// tandem-nftables: one libnftables context per Context object, kept for the life of
// the object (the agent), so that
// - a transaction or a JSON listing costs a netlink round trip, not a process spawn
//   (`nft -f -` measured 70 ms p50 on a loaded 2-core host; see bench/nft.ts);
// - tables created with `flags owner` are bound to this context's netlink socket and
//   vanish the moment the process dies (SIGKILL included): the kernel releases the
//   socket and, with it, every table it owns (NFT_TABLE_F_OWNER, Linux >= 5.12).
//
// libnftables opens its netlink socket in nft_ctx_new(), so `netns` (a name under
// /var/run/netns or a path) creates the context inside that namespace (setns on the
// calling thread, nft_ctx_new, setns back): the socket keeps the namespace it was born
// in. An agent already inside its namespace omits `netns`.
//
// Calls are synchronous on the calling thread: a set-element transaction takes tens of
// microseconds, less than handing it to a worker thread would cost, and being
// synchronous keeps the agent's transactions in the order it issued them.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include <nftables/libnftables.h>
}

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../../common/netns_guard.h"

namespace {

std::string ErrnoText(const std::string& what, int err) {
  return what + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
}

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceMethod("run", &Context::Run),
                           InstanceMethod("close", &Context::Close),
                           InstanceMethod("isOpen", &Context::IsOpen),
                       });
  }

  // new Context({ netns?: string })
  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    std::string netns;
    if (info.Length() > 0 && info[0].IsObject()) {
      Napi::Value ns = info[0].As<Napi::Object>().Get("netns");
      if (ns.IsString()) netns = ns.As<Napi::String>().Utf8Value();
    }
    int target = -1;
    if (!netns.empty()) {
      std::string path = netns.find('/') == std::string::npos ? "/var/run/netns/" + netns : netns;
      target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (target < 0) {
        Napi::Error::New(env, ErrnoText("open netns " + path, errno)).ThrowAsJavaScriptException();
        return;
      }
    }
    {
      std::string error;
      tandem::NetnsGuard guard(target, &error);
      if (guard.failed()) {
        close(target);
        Napi::Error::New(env, error).ThrowAsJavaScriptException();
        return;
      }
      ctx_ = nft_ctx_new(NFT_CTX_DEFAULT);
    }
    if (target >= 0) close(target);
    if (ctx_ == nullptr) {
      Napi::Error::New(env, "nft_ctx_new failed (no memory or no netlink socket)").ThrowAsJavaScriptException();
      return;
    }
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }

  ~Context() override { Free(); }

 private:
  void Free() {
    if (ctx_ != nullptr) {
      nft_ctx_free(ctx_);
      ctx_ = nullptr;
    }
  }

  // run(script: string, json: boolean) -> { code, output, error }
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ctx_ == nullptr) {
      Napi::Error::New(env, "nftables context is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "run(script: string, json?: boolean)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string script = info[0].As<Napi::String>().Utf8Value();
    bool json = info.Length() > 1 && info[1].ToBoolean().Value();
    // JSON output only for listings: with it set, libnftables first tries to parse the
    // input as JSON too.
    nft_ctx_output_set_flags(ctx_, json ? NFT_CTX_OUTPUT_JSON : 0);
    int code = nft_run_cmd_from_buffer(ctx_, script.c_str());
    const char* out = nft_ctx_get_output_buffer(ctx_);
    const char* err = nft_ctx_get_error_buffer(ctx_);
    Napi::Object result = Napi::Object::New(env);
    result.Set("code", Napi::Number::New(env, code));
    result.Set("output", Napi::String::New(env, out ? out : ""));
    result.Set("error", Napi::String::New(env, err ? err : ""));
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), ctx_ != nullptr);
  }

  struct nft_ctx* ctx_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Context", Context::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(tandem_nftables, Init)
