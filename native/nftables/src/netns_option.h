// The `{ netns?: string }` option both nftables objects take: the namespace opened for
// NetnsGuard (-1: stay here), or a JavaScript exception thrown and `*failed` set.
#pragma once

#include <napi.h>

#include <string>

#include "../../common/netns_guard.h"

inline int OpenNetnsOption(const Napi::CallbackInfo& info, bool* failed) {
  std::string netns;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Value ns = info[0].As<Napi::Object>().Get("netns");
    if (ns.IsString()) netns = ns.As<Napi::String>().Utf8Value();
  }
  std::string error;
  int target = tandem::OpenNetns(netns, &error);
  *failed = !error.empty();
  if (*failed) Napi::Error::New(info.Env(), error).ThrowAsJavaScriptException();
  return target;
}
