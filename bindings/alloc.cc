// NativeMemoryPool (native/alloc/caching_pool): JS gets block addresses as
// numbers and never reads through them; the pool's memory is only touched by
// native code (kernels, the CUDA backend). Also the pool bench and the NVML
// telemetry the resource monitor samples.
#include <cmath>
#include <memory>

#include "../native/alloc/caching_pool.h"
#include "../native/alloc/pool_bench.h"
#include "../native/gpu/nvml.h"
#include "convert.h"

namespace whale::bindings {
namespace {

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* field) {
  if (info.Length() <= i || !info[i].IsNumber()) throw_invalid(std::string(field) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

uint32_t arg_owner(const Napi::CallbackInfo& info, size_t i) {
  const double v = arg_number(info, i, "owner");
  if (!(v >= 0 && v <= 4294967295.0) || std::floor(v) != v) throw_invalid("owner: expected an integer in [0, 2^32)");
  return static_cast<uint32_t>(v);
}

// Byte counts: integers >= 0; +Infinity means "no cap" where allowed.
size_t to_bytes(double v, const char* field, bool allow_infinite) {
  if (allow_infinite && v == INFINITY) return alloc::kNoCap;
  if (!(v >= 0 && v <= kMaxSafe) || std::floor(v) != v)
    throw_invalid(std::string(field) + ": expected an integer number of bytes >= 0");
  return static_cast<size_t>(v);
}

double cap_value(size_t cap) { return cap == alloc::kNoCap ? INFINITY : static_cast<double>(cap); }

class NativeMemoryPool : public Napi::ObjectWrap<NativeMemoryPool> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeMemoryPool",
        {InstanceMethod("allocate", &NativeMemoryPool::Allocate), InstanceMethod("free", &NativeMemoryPool::Free),
         InstanceMethod("blockSize", &NativeMemoryPool::BlockSize),
         InstanceMethod("setOwnerCap", &NativeMemoryPool::SetOwnerCap),
         InstanceMethod("freeOwner", &NativeMemoryPool::FreeOwner),
         InstanceMethod("releaseCached", &NativeMemoryPool::ReleaseCached),
         InstanceMethod("stats", &NativeMemoryPool::Stats), InstanceMethod("owner", &NativeMemoryPool::Owner),
         InstanceMethod("owners", &NativeMemoryPool::Owners)});
  }

  explicit NativeMemoryPool(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeMemoryPool>(info) {
    guarded(info.Env(), [&] {
      Napi::Object o = read_opts(info);
      const std::string backend = o.Has("backend") ? read_string(o, "backend") : "host";
      const double device = read_number(o, "device", 0);
      if (!(device >= 0 && device < 1024) || std::floor(device) != device)
        throw_invalid("device: expected a device index");
      alloc::PoolOptions opts;
      opts.cap = to_bytes(read_number(o, "capBytes", INFINITY), "capBytes", true);
      std::unique_ptr<alloc::RawAllocator> raw;
      if (backend == "host") raw = alloc::make_host_allocator();
      else if (backend == "cuda") raw = alloc::make_cuda_allocator(static_cast<int>(device));
      else throw_invalid("backend: expected 'host' or 'cuda', got '" + backend + "'");
      pool_ = std::make_unique<alloc::CachingPool>(std::move(raw), opts);
    });
  }

 private:
  Napi::Value Allocate(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const uint32_t owner = arg_owner(info, 0);
      const size_t bytes = to_bytes(arg_number(info, 1, "bytes"), "bytes", false);
      return Napi::Number::New(info.Env(), static_cast<double>(pool_->allocate(owner, bytes)));
    });
  }

  void Free(const Napi::CallbackInfo& info) {
    guarded(info.Env(),
            [&] { pool_->free(static_cast<uintptr_t>(to_bytes(arg_number(info, 0, "address"), "address", false))); });
  }

  Napi::Value BlockSize(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const size_t size =
          pool_->block_size(static_cast<uintptr_t>(to_bytes(arg_number(info, 0, "address"), "address", false)));
      return Napi::Number::New(info.Env(), static_cast<double>(size));
    });
  }

  void SetOwnerCap(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      pool_->set_owner_cap(arg_owner(info, 0), to_bytes(arg_number(info, 1, "capBytes"), "capBytes", true));
    });
  }

  Napi::Value FreeOwner(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(pool_->free_owner(arg_owner(info, 0))));
    });
  }

  Napi::Value ReleaseCached(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(pool_->release_cached()));
    });
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const alloc::PoolStats s = pool_->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("backend", pool_->backend().name());
    o.Set("cap", cap_value(pool_->options().cap));
    o.Set("reserved", static_cast<double>(s.reserved));
    o.Set("allocated", static_cast<double>(s.allocated));
    o.Set("peakReserved", static_cast<double>(s.peak_reserved));
    o.Set("peakAllocated", static_cast<double>(s.peak_allocated));
    o.Set("largestFree", static_cast<double>(s.largest_free));
    o.Set("segments", static_cast<double>(s.segments));
    o.Set("liveBlocks", static_cast<double>(s.live_blocks));
    o.Set("freeBlocks", static_cast<double>(s.free_blocks));
    o.Set("allocations", static_cast<double>(s.allocations));
    o.Set("frees", static_cast<double>(s.frees));
    o.Set("cacheHits", static_cast<double>(s.cache_hits));
    o.Set("cacheMisses", static_cast<double>(s.cache_misses));
    o.Set("segmentsReleased", static_cast<double>(s.segments_released));
    o.Set("fragmentation", s.fragmentation);
    return o;
  }

  Napi::Value Owner(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const alloc::OwnerStats s = pool_->owner(arg_owner(info, 0));
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("allocated", static_cast<double>(s.allocated));
      o.Set("peak", static_cast<double>(s.peak));
      o.Set("cap", cap_value(s.cap));
      o.Set("blocks", static_cast<double>(s.blocks));
      return o;
    });
  }

  Napi::Value Owners(const Napi::CallbackInfo& info) {
    const std::vector<uint32_t> ids = pool_->owners();
    Napi::Array a = Napi::Array::New(info.Env(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) a.Set(static_cast<uint32_t>(i), static_cast<double>(ids[i]));
    return a;
  }

  std::unique_ptr<alloc::CachingPool> pool_;
};

Napi::Value PoolBenchPairs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const std::string backend = read_string(o, "backend");
    const double device = read_number(o, "device", 0);
    const size_t bytes = to_bytes(read_number(o, "bytes", 0), "bytes", false);
    const size_t pairs = to_bytes(read_number(o, "pairs", 0), "pairs", false);
    const size_t live = to_bytes(read_number(o, "live", 0), "live", false);
    if (live > 100000) throw_invalid("live: expected at most 100000");
    const alloc::PairBenchResult r = alloc::bench_pairs(backend, static_cast<int>(device), bytes, pairs, live);
    Napi::Object out = Napi::Object::New(env);
    out.Set("poolPairsPerSec", r.pool_pairs_per_s);
    out.Set("rawPairsPerSec", r.raw_pairs_per_s);
    out.Set("rawName", r.raw_name);
    return out;
  });
}

Napi::Value CudaPoolAvailable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const double device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(device >= 0 && device < 1024) || std::floor(device) != device)
      throw_invalid("device: expected a device index");
    std::string why;
    const bool ok = alloc::cuda_allocator_available(static_cast<int>(device), &why);
    Napi::Object out = Napi::Object::New(env);
    out.Set("available", ok);
    out.Set("reason", why);
    return out;
  });
}

Napi::Value GpuTelemetry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const gpu::NvmlTelemetryReport r = gpu::nvml_telemetry();
  Napi::Object out = Napi::Object::New(env);
  out.Set("loaded", r.loaded);
  out.Set("error", r.error);
  Napi::Array devices = Napi::Array::New(env, r.devices.size());
  for (size_t i = 0; i < r.devices.size(); ++i) {
    const gpu::NvmlTelemetry& t = r.devices[i];
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", t.index);
    if (t.has_temperature) d.Set("temperatureC", t.temperature_c);
    if (t.has_power) d.Set("powerWatts", t.power_mw / 1000.0);
    if (t.has_power_limit) d.Set("powerLimitWatts", t.power_limit_mw / 1000.0);
    if (t.has_processes) {
      Napi::Array procs = Napi::Array::New(env, t.processes.size());
      for (size_t k = 0; k < t.processes.size(); ++k) {
        Napi::Object p = Napi::Object::New(env);
        p.Set("pid", t.processes[k].pid);
        p.Set("usedMemory", static_cast<double>(t.processes[k].used_memory));
        procs.Set(static_cast<uint32_t>(k), p);
      }
      d.Set("processes", procs);
    }
    devices.Set(static_cast<uint32_t>(i), d);
  }
  out.Set("devices", devices);
  return out;
}

}  // namespace

void init_alloc(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeMemoryPool", NativeMemoryPool::Define(env));
  exports.Set("poolBenchPairs", Napi::Function::New(env, PoolBenchPairs, "poolBenchPairs"));
  exports.Set("cudaPoolAvailable", Napi::Function::New(env, CudaPoolAvailable, "cudaPoolAvailable"));
  exports.Set("gpuTelemetry", Napi::Function::New(env, GpuTelemetry, "gpuTelemetry"));
}

}  // namespace whale::bindings
