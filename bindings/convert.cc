#include "convert.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "convert_arrays.h"

namespace whale::bindings {

ErrorInfo capture(const std::exception& e) {
  ErrorInfo info;
  info.message = e.what();
  if (auto* ee = dynamic_cast<const EngineError*>(&e)) {
    info.code = ee->code();
    info.client = ee->client();
  } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
    info.code = "ERR_OUT_OF_MEMORY";
    info.message = "out of memory: " + info.message;
  } else {
    info.code = "ERR_NATIVE";
  }
  return info;
}

Napi::Error to_js(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.message);
  err.Set("code", Napi::String::New(env, info.code));
  if (info.client >= 0) err.Set("client", Napi::Number::New(env, static_cast<double>(info.client)));
  return err;
}

void throw_invalid(const std::string& message) { throw EngineError(kErrInvalidArg, message); }

Napi::Float32Array read_f32(const Napi::Value& value, const char* field) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_invalid(std::string(field) + ": expected a Float32Array");
  }
  return value.As<Napi::Float32Array>();
}

Napi::Float64Array read_f64(const Napi::Value& value, const char* field) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw_invalid(std::string(field) + ": expected a Float64Array");
  }
  return value.As<Napi::Float64Array>();
}

std::vector<Napi::Float32Array> gather_rows(const Napi::Value& value) {
  if (!value.IsArray()) throw_invalid("clients: expected an array of Float32Array");
  Napi::Array arr = value.As<Napi::Array>();
  const uint32_t n = arr.Length();
  std::vector<Napi::Value> items;
  items.reserve(n);
  for (uint32_t i = 0; i < n; ++i) items.push_back(arr.Get(i));
  std::vector<Napi::Float32Array> rows;
  rows.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::string field = "clients[" + std::to_string(i) + "]";
    rows.push_back(read_f32(items[i], field.c_str()));
  }
  return rows;
}

Device read_device(const Napi::Object& opts) {
  Device d;
  std::string kind = opts.Has("device") ? read_string(opts, "device") : "auto";
  if (kind == "auto") d.kind = Device::Kind::kAuto;
  else if (kind == "cpu") d.kind = Device::Kind::kCpu;
  else if (kind == "cuda") d.kind = Device::Kind::kCuda;
  else throw_invalid("device: expected 'auto', 'cpu' or 'cuda', got '" + kind + "'");
  d.index = static_cast<int>(read_number(opts, "deviceIndex", 0));
  return d;
}

double read_number(const Napi::Object& opts, const char* field, double fallback) {
  Napi::Value v = opts.Get(field);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw_invalid(std::string(field) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool read_bool(const Napi::Object& opts, const char* field, bool fallback) {
  Napi::Value v = opts.Get(field);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw_invalid(std::string(field) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string read_string(const Napi::Object& opts, const char* field) {
  Napi::Value v = opts.Get(field);
  if (!v.IsString()) throw_invalid(std::string(field) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object read_opts(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_invalid("options: expected an object");
  return info[0].As<Napi::Object>();
}

bool read_async(const Napi::CallbackInfo& info) { return info.Length() > 1 && info[1].ToBoolean(); }

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// What allocate_copy_memory() takes for a block of `bytes` >= kHugePage.
size_t huge_rounded(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

}  // namespace

CopyMemory allocate_copy_memory(size_t bytes) {
  if (bytes < kHugePage) {
    void* p = std::malloc(bytes > 0 ? bytes : 1);
    if (!p) throw std::bad_alloc();
    return CopyMemory(p);
  }
  const size_t rounded = huge_rounded(bytes);
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure just means small pages
#endif
  return CopyMemory(p);
}

namespace {

// Large result buffers whose arrays were collected, kept (pages mapped) for the
// next result of the same size: a fresh one costs its first-touch page faults
// again. At most kPoolBytes (of allocated, 2 MiB-rounded sizes); the oldest
// block goes when a new one does not fit. Guarded: finalizers of worker
// threads' environments run on those threads. Freed at unload.
constexpr size_t kPoolBytes = size_t{64} << 20;

struct ResultPool {
  std::mutex mutex;
  std::deque<std::pair<size_t, void*>> blocks;  // (allocated bytes, memory), oldest first
  size_t bytes = 0;
  ~ResultPool() {
    for (auto& b : blocks) std::free(b.second);
  }
};
ResultPool pool;

void* take_pooled(size_t bytes) {
  const size_t want = huge_rounded(bytes);
  std::lock_guard<std::mutex> lock(pool.mutex);
  for (auto it = pool.blocks.begin(); it != pool.blocks.end(); ++it) {
    if (it->first != want) continue;
    void* p = it->second;
    pool.blocks.erase(it);
    pool.bytes -= want;
    return p;
  }
  return nullptr;
}

void give_back(void* data, void* hint) noexcept {  // an ArrayBuffer finalizer
  const size_t size = huge_rounded(reinterpret_cast<size_t>(hint));
  std::vector<void*> evicted;
  try {
    std::lock_guard<std::mutex> lock(pool.mutex);
    while (!pool.blocks.empty() && pool.bytes + size > kPoolBytes) {
      evicted.push_back(pool.blocks.front().second);
      pool.bytes -= pool.blocks.front().first;
      pool.blocks.pop_front();
    }
    if (size <= kPoolBytes) {
      pool.blocks.emplace_back(size, data);
      pool.bytes += size;
      data = nullptr;
    }
  } catch (...) {  // no memory for the bookkeeping: just free
  }
  for (void* p : evicted) std::free(p);
  std::free(data);
}

// External ArrayBuffers cannot be transferred: Node 20 copies them on
// postMessage(..., [buffer]), Node 21 and later throw DataCloneError. So the
// pool is used only where a transfer still works (and not with
// WHALE_RESULT_POOL=off).
bool pool_enabled(napi_env env) {
  static const bool enabled = [env] {
    const char* flag = std::getenv("WHALE_RESULT_POOL");
    if (flag && std::string(flag) == "off") return false;
    const napi_node_version* version = nullptr;
    return napi_get_node_version(env, &version) == napi_ok && version && version->major < 21;
  }();
  return enabled;
}

}  // namespace

Napi::Float32Array new_result_f32(Napi::Env env, size_t count) {
  const size_t bytes = count * sizeof(float);
  if (bytes < kHugePage || !pool_enabled(env)) return Napi::Float32Array::New(env, count);
  CopyMemory memory(take_pooled(bytes));
  if (!memory) memory = allocate_copy_memory(bytes);
  napi_value buffer;
  const napi_status status = napi_create_external_arraybuffer(
      env, memory.get(), bytes, [](napi_env, void* data, void* hint) { give_back(data, hint); },
      reinterpret_cast<void*>(bytes), &buffer);
  // Runtimes with V8's sandbox refuse memory from outside it: a plain array then.
  if (status != napi_ok) return Napi::Float32Array::New(env, count);
  memory.release();  // the finalizer takes it
  return Napi::Float32Array::New(env, count, Napi::ArrayBuffer(env, buffer), 0);
}

void copy_segments(const std::vector<CopySegment>& segments) {
  size_t total = 0;
  for (const CopySegment& s : segments) total += s.bytes;
  constexpr size_t kPerThread = size_t{16} << 20;
  const size_t threads = std::min<size_t>({std::max(1u, std::thread::hardware_concurrency()), 8, total / kPerThread});
  auto copy_range = [&](size_t lo, size_t hi) {  // byte range [lo, hi) of the concatenated segments
    size_t base = 0;
    for (const CopySegment& s : segments) {
      const size_t b = std::max(lo, base), e = std::min(hi, base + s.bytes);
      if (b < e)
        std::memcpy(static_cast<char*>(s.dst) + (b - base), static_cast<const char*>(s.src) + (b - base), e - b);
      base += s.bytes;
    }
  };
  if (threads <= 1) return copy_range(0, total);
  // Dedicated threads rather than the shared pool: the JS thread waits here
  // and must not pick up some other job's long task meanwhile.
  std::vector<std::thread> pool;
  const size_t step = (total + threads - 1) / threads;
  size_t t = 1;
  try {
    for (; t < threads; ++t) pool.emplace_back(copy_range, t * step, std::min(total, (t + 1) * step));
  } catch (const std::system_error&) {  // no thread to be had: copy the rest here
  }
  copy_range(0, std::min(total, step));
  for (; t < threads; ++t) copy_range(t * step, std::min(total, (t + 1) * step));
  for (std::thread& th : pool) th.join();
}

}  // namespace whale::bindings
