// Shared glue helpers: JS values in, plain C++ structs out, C++ errors back as
// JS errors carrying a stable `code` (and `client` where one is known).
#pragma once
#include <napi.h>

#include <exception>
#include <string>
#include <vector>

#include "../native/aggregate/client_updates.h"
#include "../native/common/device.h"
#include "../native/common/error.h"

namespace whale::bindings {

// A failure caught off the JS thread, turned into a JS error later.
struct ErrorInfo {
  std::string code;
  std::string message;
  long long client = -1;
};

ErrorInfo capture(const std::exception& e);
Napi::Error to_js(Napi::Env env, const ErrorInfo& info);

[[noreturn]] void throw_invalid(const std::string& message);

// The Float32Array rows of `value` (an Array), each element read once. Reading
// may run JS (getters), so call this before taking any array's memory.
std::vector<Napi::Float32Array> gather_rows(const Napi::Value& value);
Napi::Float32Array read_f32(const Napi::Value& value, const char* field);
Napi::Float64Array read_f64(const Napi::Value& value, const char* field);

// A new Float32Array of `count` elements for a result the native code writes
// in full before JS can see it (its contents start undefined). On Node 20,
// from 2 MiB up, its memory comes from a pool of collected results (huge
// pages, already faulted in: a fresh 4 MiB result took 16 ms of first-touch
// page faults in this VM); elsewhere, or with WHALE_RESULT_POOL=off, a plain
// V8 array.
Napi::Float32Array new_result_f32(Napi::Env env, size_t count);
Device read_device(const Napi::Object& opts);
double read_number(const Napi::Object& opts, const char* field, double fallback);
bool read_bool(const Napi::Object& opts, const char* field, bool fallback);
std::string read_string(const Napi::Object& opts, const char* field);
// The (options, async) calling convention of the exported functions.
Napi::Object read_opts(const Napi::CallbackInfo& info);
bool read_async(const Napi::CallbackInfo& info);

// Runs fn() and rethrows any C++ exception as a JS error.
template <typename Fn>
auto guarded(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js(env, capture(e));
  }
}

}  // namespace whale::bindings
