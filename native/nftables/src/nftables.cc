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
// run() is synchronous on the calling thread: a set-element transaction is short, and being
// synchronous keeps the agent's transactions in the order it issued them. runAsync() runs
// on libuv's thread pool and resolves a promise: for listings (flow counters every 250 ms,
// guard counters every second), which rebuild libnftables' cache of the whole ruleset and
// print JSON, and would otherwise stall the agent's event loop for milliseconds in the
// middle of a hand-off. A context is not thread-safe: while a runAsync is in flight, run()
// and close() on the same context throw (an agent keeps a second context for its reads).
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
#include "netns_option.h"

// counters.cc: named counters read with libnftnl, without libnftables' cache rebuild.
Napi::Function DefineCounterReader(Napi::Env env);

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
                           InstanceMethod("runAsync", &Context::RunAsync),
                           InstanceMethod("close", &Context::Close),
                           InstanceMethod("isOpen", &Context::IsOpen),
                       });
  }

  // new Context({ netns?: string })
  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    bool failed = false;
    int target = OpenNetnsOption(info, &failed);
    if (failed) return;
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
  friend class RunWorker;
  void Free() {
    if (ctx_ != nullptr) {
      nft_ctx_free(ctx_);
      ctx_ = nullptr;
    }
  }

  // run(script: string, json: boolean) -> { code, output, error }
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) {
      Napi::Error::New(env, "nftables context is busy with runAsync").ThrowAsJavaScriptException();
      return env.Undefined();
    }
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

  // runAsync(script: string, json: boolean) -> Promise<{ code, output, error }>
  Napi::Value RunAsync(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (busy_) {
      Napi::Error::New(info.Env(), "nftables context is busy with runAsync").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    Free();
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), ctx_ != nullptr);
  }

  struct nft_ctx* ctx_ = nullptr;
  bool busy_ = false;
};

// One runAsync: nft_run_cmd_from_buffer on a thread-pool thread. The Context is referenced
// until the worker completes, and marked busy so that nothing else touches its nft_ctx.
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, Context* owner, std::string script, bool json)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        owner_(owner),
        script_(std::move(script)),
        json_(json) {
    owner_->Ref();
    owner_->busy_ = true;
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    struct nft_ctx* ctx = owner_->ctx_;
    nft_ctx_output_set_flags(ctx, json_ ? NFT_CTX_OUTPUT_JSON : 0);
    code_ = nft_run_cmd_from_buffer(ctx, script_.c_str());
    const char* out = nft_ctx_get_output_buffer(ctx);
    const char* err = nft_ctx_get_error_buffer(ctx);
    output_ = out ? out : "";
    error_ = err ? err : "";
  }

  void OnOK() override {
    Napi::Env env = Env();
    Finish();
    Napi::Object result = Napi::Object::New(env);
    result.Set("code", Napi::Number::New(env, code_));
    result.Set("output", Napi::String::New(env, output_));
    result.Set("error", Napi::String::New(env, error_));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override {
    Finish();
    deferred_.Reject(e.Value());
  }

 private:
  void Finish() {
    owner_->busy_ = false;
    owner_->Unref();
  }

  Napi::Promise::Deferred deferred_;
  Context* owner_;
  std::string script_;
  bool json_;
  int code_ = 0;
  std::string output_;
  std::string error_;
};

Napi::Value Context::RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ctx_ == nullptr) {
    Napi::Error::New(env, "nftables context is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (busy_) {
    Napi::Error::New(env, "nftables context is busy with runAsync").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "runAsync(script: string, json?: boolean)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool json = info.Length() > 1 && info[1].ToBoolean().Value();
  auto* worker = new RunWorker(env, this, info[0].As<Napi::String>().Utf8Value(), json);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Context", Context::Define(env));
  exports.Set("CounterReader", DefineCounterReader(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(tandem_nftables, Init)
