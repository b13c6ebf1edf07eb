// setThreadScheduler: the calling thread's scheduling policy (sched_setscheduler(2), pid 0 =
// the calling thread). Not netlink: a syscall Node has no call for, kept in this addon so
// agents need no fifth native build. A VRLS agent runs its event loop thread under
// SCHED_FIFO while a hand-off is in flight and under SCHED_OTHER otherwise
// (lib/roles/vrls/realtime-boost.ts). SCHED_RESET_ON_FORK: no child inherits the policy.
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

namespace tandem {

namespace {

Napi::Value SetThreadScheduler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "setThreadScheduler(policy: \"fifo\" | \"other\", priority: number)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string policyName = info[0].As<Napi::String>().Utf8Value();
  const int priority = info[1].As<Napi::Number>().Int32Value();
  int policy;
  if (policyName == "fifo") {
    policy = SCHED_FIFO;
    if (priority < 1 || priority > 99) {
      Napi::RangeError::New(env, "setThreadScheduler: a fifo priority is 1..99, got " + std::to_string(priority))
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else if (policyName == "other") {
    policy = SCHED_OTHER;
    if (priority != 0) {
      Napi::RangeError::New(env, "setThreadScheduler: an other priority is 0, got " + std::to_string(priority))
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else {
    Napi::TypeError::New(env, "setThreadScheduler: policy must be \"fifo\" or \"other\", got \"" + policyName + "\"")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct sched_param param {};
  param.sched_priority = priority;
  if (sched_setscheduler(0, policy | SCHED_RESET_ON_FORK, &param) != 0) {
    const int e = errno;
    Napi::Error::New(env, std::string("sched_setscheduler(") + policyName + "): " + std::strerror(e))
        .ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// setThreadAffinity(cpus): the calling thread runs only on these CPUs (sched_setaffinity(2),
// pid 0 = the calling thread; other threads of the process keep theirs). A VRLS agent on the
// virtual lab keeps its event loop off the CPU that receives the hub's frames, so that
// while it runs real-time during a hand-off it cannot starve that CPU's packet processing.
Napi::Value SetThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray() || info[0].As<Napi::Array>().Length() == 0) {
    Napi::TypeError::New(env, "setThreadAffinity(cpus: number[]) needs at least one CPU").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array cpus = info[0].As<Napi::Array>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < cpus.Length(); i++) {
    Napi::Value v = cpus.Get(i);
    const double cpu = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(cpu >= 0 && cpu < CPU_SETSIZE) || cpu != static_cast<int>(cpu)) {
      Napi::RangeError::New(env, "setThreadAffinity: not a CPU number: " + v.ToString().Utf8Value())
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    CPU_SET(static_cast<int>(cpu), &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    const int e = errno;
    Napi::Error::New(env, std::string("sched_setaffinity: ") + std::strerror(e)).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace

Napi::Function DefineSetThreadAffinity(Napi::Env env) {
  return Napi::Function::New(env, SetThreadAffinity, "setThreadAffinity");
}

Napi::Function DefineSetThreadScheduler(Napi::Env env) {
  return Napi::Function::New(env, SetThreadScheduler, "setThreadScheduler");
}

}  // namespace tandem
