// Shared helpers of tandem-netlink: network namespaces, errno text, IPv4 text <-> u32.
#pragma once

#include "../../common/netns_guard.h"
#include <napi.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace tandem {

inline std::string ErrnoText(const std::string& what, int err) {
  return what + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
}

// Throws a JS Error carrying `errno` (and `code`, e.g. "EEXIST") so callers can tell
// "already there" from real failures.
inline void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, ErrnoText(what, err));
  e.Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  if (name != nullptr) e.Set("code", Napi::String::New(env, name));
  e.ThrowAsJavaScriptException();
}

// Opens /var/run/netns/NAME (or a path); -1 and a JS exception on failure. `netns` empty: -1, no error.
inline int OpenNetns(Napi::Env env, const Napi::Value& options) {
  if (!options.IsObject()) return -1;
  Napi::Value ns = options.As<Napi::Object>().Get("netns");
  if (!ns.IsString()) return -1;
  std::string path = ns.As<Napi::String>().Utf8Value();
  if (path.empty()) return -1;
  if (path.find('/') == std::string::npos) path = "/var/run/netns/" + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "open netns " + path, errno);
  return fd;
}

using tandem::NetnsGuard;

// "a.b.c.d" -> network-order u32; false when not an IPv4 address.
inline bool ParseIpv4(const std::string& text, uint32_t* out) {
  struct in_addr a;
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  *out = a.s_addr;
  return true;
}

inline std::string Ipv4Text(uint32_t networkOrder) {
  char buf[INET_ADDRSTRLEN];
  struct in_addr a;
  a.s_addr = networkOrder;
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

// Reads a required IPv4 string property; sets a JS TypeError and returns false otherwise.
inline bool GetIpv4(Napi::Object o, const char* key, uint32_t* out) {
  Napi::Value v = o.Get(key);
  if (!v.IsString() || !ParseIpv4(v.As<Napi::String>().Utf8Value(), out)) {
    Napi::TypeError::New(o.Env(), std::string(key) + " must be an IPv4 address string").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// Reads an integer property in [lo, hi]; `dflt` when absent (or a TypeError when required).
inline bool GetInt(Napi::Object o, const char* key, double lo, double hi, double* out, bool required,
                   double dflt = 0) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) {
      Napi::TypeError::New(o.Env(), std::string(key) + " is required").ThrowAsJavaScriptException();
      return false;
    }
    *out = dflt;
    return true;
  }
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int64_t>(d))) {
    Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer in [" + std::to_string(lo) + ", " +
                                       std::to_string(hi) + "]")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = d;
  return true;
}

Napi::Function DefineConntrack(Napi::Env env);
Napi::Function DefineConntrackEvents(Napi::Env env);
Napi::Function DefineLink(Napi::Env env);
Napi::Function DefineSetThreadScheduler(Napi::Env env);
Napi::Function DefineSetThreadAffinity(Napi::Env env);

}  // namespace tandem
