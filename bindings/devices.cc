// buildInfo() and devices(): what was compiled in and what this machine has.
#include <cstdlib>
#include <string>

#include "../native/common/membench.h"
#include "../native/common/thread_pool.h"
#include "../native/gpu/cuda_devices.h"
#include "../native/gpu/nvml.h"
#include "convert.h"

#ifndef WHALE_VERSION
#define WHALE_VERSION "0.0.0"
#endif
#ifndef WHALE_CUDA_ARCHITECTURES
#define WHALE_CUDA_ARCHITECTURES ""
#endif

namespace whale::bindings {
namespace {

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", WHALE_VERSION);
  o.Set("cuda", gpu::cuda_probe().compiled);
  o.Set("cudaArchitectures", WHALE_CUDA_ARCHITECTURES);
  o.Set("cudaRuntime", gpu::cuda_probe().runtime_version);
#if defined(__clang__)
  o.Set("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", "gcc " __VERSION__);
#else
  o.Set("compiler", "unknown");
#endif
#if defined(__x86_64__) && defined(__GNUC__)
  // The widest vector kernels the run-time dispatch can pick here: AVX-512 (robust aggregation, Krum's Gram
  // matrix) unless WHALE_NO_AVX512 is set, AVX2+FMA for the rest unless WHALE_NO_AVX2 is.
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !std::getenv("WHALE_NO_AVX2");
  std::string simd = avx2 ? "avx2+fma" : "sse2";
  if (avx2 && __builtin_cpu_supports("avx512f") && !std::getenv("WHALE_NO_AVX512")) simd = "avx512f+" + simd;
  o.Set("simd", simd);
#else
  o.Set("simd", "baseline");
#endif
  o.Set("threads", static_cast<double>(ThreadPool::shared().concurrency()));
  return o;
}

Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const gpu::CudaProbe& cuda = gpu::cuda_probe();
  Napi::Object c = Napi::Object::New(env);
  c.Set("compiled", cuda.compiled);
  c.Set("unavailableReason", cuda.unavailable_reason);
  Napi::Array cd = Napi::Array::New(env, cuda.devices.size());
  for (size_t i = 0; i < cuda.devices.size(); ++i) {
    const gpu::CudaDeviceInfo& d = cuda.devices[i];
    Napi::Object x = Napi::Object::New(env);
    x.Set("index", d.index);
    x.Set("name", d.name);
    x.Set("totalMemory", static_cast<double>(d.total_memory));
    x.Set("computeCapability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
    x.Set("multiprocessors", d.multiprocessors);
    cd.Set(static_cast<uint32_t>(i), x);
  }
  c.Set("devices", cd);

  const gpu::NvmlReport nvml = gpu::nvml_query();
  Napi::Object n = Napi::Object::New(env);
  n.Set("loaded", nvml.loaded);
  n.Set("driverVersion", nvml.driver_version);
  n.Set("error", nvml.error);
  Napi::Array nd = Napi::Array::New(env, nvml.devices.size());
  for (size_t i = 0; i < nvml.devices.size(); ++i) {
    const gpu::NvmlDeviceInfo& d = nvml.devices[i];
    Napi::Object x = Napi::Object::New(env);
    x.Set("index", d.index);
    x.Set("name", d.name);
    x.Set("uuid", d.uuid);
    x.Set("memoryTotal", static_cast<double>(d.memory_total));
    x.Set("memoryUsed", static_cast<double>(d.memory_used));
    x.Set("memoryFree", static_cast<double>(d.memory_free));
    x.Set("utilizationGpu", d.utilization_gpu);
    x.Set("utilizationMemory", d.utilization_memory);
    nd.Set(static_cast<uint32_t>(i), x);
  }
  n.Set("devices", nd);

  Napi::Object o = Napi::Object::New(env);
  o.Set("cpuThreads", static_cast<double>(ThreadPool::shared().concurrency()));
  o.Set("cuda", c);
  o.Set("nvml", n);
  return o;
}

Napi::Value MemoryTriad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    double elements = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    double repeats = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    if (!(elements >= 1024 && elements <= 4e9)) throw_invalid("elements: expected a number in [1024, 4e9]");
    if (!(repeats >= 1 && repeats <= 1000)) throw_invalid("repeats: expected a number in [1, 1000]");
    std::vector<double> runs = triad_bandwidth(static_cast<size_t>(elements), static_cast<size_t>(repeats));
    auto arr = Napi::Float64Array::New(env, runs.size());
    for (size_t i = 0; i < runs.size(); ++i) arr[i] = runs[i];
    return arr;
  });
}

}  // namespace

void init_devices(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("memoryTriad", Napi::Function::New(env, MemoryTriad, "memoryTriad"));
}

}  // namespace whale::bindings
