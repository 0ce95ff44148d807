// The runtime of the CUDA emulation (cuemu.h): device memory bookkeeping, errors, streams and
// the grid executor (blocks over host threads, a block's threads as fibers).
#include "cuemu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define WHALE_CUEMU_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define WHALE_CUEMU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ctx = boost::context;

#if defined(BOOST_USE_UCONTEXT)
// The sanitizer build uses Boost's ucontext fibers (the flavour whose switches ASan is told about); Debian's
// libboost_context is built for fcontext and lacks this one definition, so it is here: each host thread's
// own context, made on first use.
boost::context::detail::fiber_activation_record*& boost::context::detail::fiber_activation_record::current() noexcept {
  thread_local fiber_activation_record self;
  thread_local fiber_activation_record* running = &self;
  return running;
}
#endif

namespace whale::cuemu {
namespace {

constexpr int kDevices = 1;
constexpr size_t kStackBytes = 128 * 1024;  // per emulated thread; kernels keep small arrays on it
constexpr unsigned kMaxThreadsPerBlock = 1024;

std::mutex g_mutex;  // guards everything below
std::map<uintptr_t, size_t> g_allocs;
std::set<cudaStream_t> g_streams;
size_t g_in_use = 0, g_limit = 0;
std::atomic<uint64_t> g_kernels{0}, g_threads{0};

thread_local cudaError_t t_last = cudaSuccess;     // cudaGetLastError
thread_local cudaError_t t_pending = cudaSuccess;  // reported by the next synchronising call
thread_local int t_device = 0;

cudaError_t fail(cudaError_t e) {
  t_last = e;
  return e;
}

// The allocation holding [p, p + bytes), or g_allocs.end(). Caller holds g_mutex.
std::map<uintptr_t, size_t>::iterator find_alloc(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return g_allocs.end();
  --it;
  if (a + bytes > it->first + it->second || a + bytes < a) return g_allocs.end();
  return it;
}

bool is_device(const void* p, size_t bytes) {
  std::lock_guard lock(g_mutex);
  return find_alloc(p, bytes) != g_allocs.end();
}

bool stream_ok(cudaStream_t s) {
  if (!s) return true;
  std::lock_guard lock(g_mutex);
  return g_streams.count(s) != 0;
}

cudaError_t take_pending() {
  const cudaError_t e = t_pending;
  t_pending = cudaSuccess;
  return e == cudaSuccess ? e : fail(e);
}

// ---- the grid executor ----------------------------------------------------------------------

// Fiber stacks, kept for the next block (mapping them costs far more than a block of small threads).
class StackCache {
 public:
  ctx::stack_context take() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        ctx::stack_context s = free_.back();
        free_.pop_back();
        // A fiber destroyed at a barrier (unwound) may leave its frames' redzones poisoned.
        WHALE_CUEMU_UNPOISON(static_cast<char*>(s.sp) - s.size, s.size);
        return s;
      }
    }
    // mmap, not malloc: a sanitizer must not take a fiber's frames for a heap block's bytes.
    void* base = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    ctx::stack_context s;
    s.size = kStackBytes;
    s.sp = static_cast<char*>(base) + kStackBytes;
    return s;
  }
  void give(const ctx::stack_context& s) {
    std::lock_guard lock(mutex_);
    free_.push_back(s);
  }

 private:
  std::mutex mutex_;
  std::vector<ctx::stack_context> free_;
};
StackCache g_stacks;

struct CachedStack {
  ctx::stack_context allocate() { return g_stacks.take(); }
  void deallocate(ctx::stack_context& s) noexcept { g_stacks.give(s); }
};

enum class State { kReady, kAtBarrier, kDone };

struct Slot {
  ctx::fiber fiber;  // the suspended thread
  ctx::fiber sink;   // inside the thread: the scheduler to go back to
  State state = State::kReady;
};

thread_local Slot* t_slot = nullptr;  // the emulated thread running on this host thread

struct Grid {
  const LaunchConfig* c;
  void (*body)(void*);
  void* ctx;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex why_mutex;
  std::string why;

  void fail(const std::string& message) {
    std::lock_guard lock(why_mutex);
    if (!failed.exchange(true)) why = message;
  }
};

uint3 index_of(uint64_t i, dim3 d) {
  return uint3{static_cast<unsigned>(i % d.x), static_cast<unsigned>((i / d.x) % d.y),
               static_cast<unsigned>(i / (uint64_t{d.x} * d.y))};
}

void run_block(Grid& g, uint64_t b, std::vector<Slot>& slots) {
  const dim3 bd = g.c->block;
  const unsigned threads = bd.x * bd.y * bd.z;
  blockIdx = index_of(b, g.c->grid);
  blockDim = bd;
  gridDim = g.c->grid;
  slots.clear();
  slots.resize(threads);
  for (unsigned t = 0; t < threads; ++t) {
    Slot* me = &slots[t];
    me->fiber = ctx::fiber(std::allocator_arg, CachedStack{}, [me, &g](ctx::fiber&& sink) {
      me->sink = std::move(sink);
      t_slot = me;
      try {
        g.body(g.ctx);
      } catch (const ctx::detail::forced_unwind&) {
        throw;
      } catch (const std::exception& e) {
        g.fail(std::string("a kernel thread threw: ") + e.what());
      }
      me->state = State::kDone;
      return std::move(me->sink);
    });
  }
  for (;;) {
    unsigned waiting = 0, done = 0;
    for (unsigned t = 0; t < threads; ++t) {
      Slot& s = slots[t];
      if (s.state == State::kDone) {
        ++done;
        continue;
      }
      s.state = State::kReady;
      threadIdx = index_of(t, bd);
      s.fiber = std::move(s.fiber).resume();
      if (s.state == State::kAtBarrier) ++waiting;
      else ++done;
    }
    if (waiting == 0) break;
    if (done != 0) {
      const uint3 bi = blockIdx;
      g.fail("__syncthreads() reached by " + std::to_string(waiting) + " of the " + std::to_string(threads) +
             " threads of block (" + std::to_string(bi.x) + "," + std::to_string(bi.y) + "," + std::to_string(bi.z) +
             "); the others had returned");
      break;  // destroying the suspended fibers unwinds their stacks
    }
  }
  slots.clear();
  t_slot = nullptr;
}

void run_blocks(Grid& g, uint64_t blocks) {
  std::vector<Slot> slots;
  for (uint64_t b; !g.failed && (b = g.next.fetch_add(1)) < blocks;) run_block(g, b, slots);
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

}  // namespace

void run_grid(const LaunchConfig& c, const void* const* pointer_args, size_t pointer_count, void (*body)(void*),
              void* ctx) {
  const uint64_t blocks = uint64_t{c.grid.x} * c.grid.y * c.grid.z;
  const uint64_t threads = uint64_t{c.block.x} * c.block.y * c.block.z;
  auto reject = [](cudaError_t e, const std::string& why) {
    if (std::getenv("WHALE_CUEMU_VERBOSE")) std::fprintf(stderr, "cuemu: launch rejected: %s\n", why.c_str());
    fail(e);
  };
  // The limits of every GPU the build targets (sm_80, sm_90).
  if (blocks == 0 || c.grid.x > 0x7FFFFFFFu || c.grid.y > 65535 || c.grid.z > 65535) {
    return reject(cudaErrorInvalidConfiguration, "grid " + dims(c.grid));
  }
  if (threads == 0 || threads > kMaxThreadsPerBlock || c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64) {
    return reject(cudaErrorInvalidConfiguration, "block " + dims(c.block));
  }
  if (c.shared != 0) return reject(cudaErrorNotSupported, "dynamic shared memory is not emulated");
  if (!stream_ok(c.stream)) return reject(cudaErrorInvalidResourceHandle, "unknown stream");
  for (size_t i = 0; i < pointer_count; ++i) {
    if (pointer_args[i] && !is_device(pointer_args[i], 0)) {
      return reject(cudaErrorInvalidValue, "pointer argument " + std::to_string(i) + " is not device memory");
    }
  }
  if (t_slot) return reject(cudaErrorNotSupported, "launch from a kernel (dynamic parallelism)");
  g_kernels.fetch_add(1);
  g_threads.fetch_add(blocks * threads);

  Grid g;
  g.c = &c;
  g.body = body;
  g.ctx = ctx;
  // Blocks spread over a few host threads when there is enough work to pay for starting them.
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned helpers =
      blocks * threads < 16384 ? 0 : static_cast<unsigned>(std::min<uint64_t>({hw, 8, blocks}) - 1);
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < helpers; ++i) pool.emplace_back([&] { run_blocks(g, blocks); });
  const uint3 saved_block = blockIdx, saved_thread = threadIdx;
  const dim3 saved_bdim = blockDim, saved_gdim = gridDim;
  run_blocks(g, blocks);
  for (std::thread& t : pool) t.join();
  blockIdx = saved_block, threadIdx = saved_thread, blockDim = saved_bdim, gridDim = saved_gdim;
  if (g.failed) {
    if (std::getenv("WHALE_CUEMU_VERBOSE")) std::fprintf(stderr, "cuemu: kernel failed: %s\n", g.why.c_str());
    t_pending = cudaErrorLaunchFailure;
  }
}

void set_memory_limit(size_t bytes) {
  std::lock_guard lock(g_mutex);
  g_limit = bytes;
}
size_t device_bytes_in_use() {
  std::lock_guard lock(g_mutex);
  return g_in_use;
}
uint64_t kernels_launched() { return g_kernels.load(); }
uint64_t threads_run() { return g_threads.load(); }

}  // namespace whale::cuemu

using namespace whale::cuemu;

void __syncthreads() {
  Slot* me = t_slot;
  if (!me) return;  // outside a kernel: nothing to wait for
  me->state = State::kAtBarrier;
  me->sink = std::move(me->sink).resume();
  t_slot = me;
}

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last; }

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue);
  *version = 12000;  // the API level the emulation follows
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) { return cudaRuntimeGetVersion(version); }

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = kDevices;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (device < 0 || device >= kDevices) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU (native/cuemu)");
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  {
    std::lock_guard lock(g_mutex);
    prop->totalGlobalMem = g_limit ? g_limit : static_cast<size_t>(pages > 0 && page > 0 ? pages * page : 0);
  }
  prop->sharedMemPerBlock = 48 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = static_cast<int>(kMaxThreadsPerBlock);
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7FFFFFFF;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= kDevices) return fail(cudaErrorInvalidDevice);
  t_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = t_device;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return take_pending(); }

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  std::lock_guard lock(g_mutex);
  if (g_limit && (bytes > g_limit || g_in_use > g_limit - bytes)) return fail(cudaErrorMemoryAllocation);
  // Exactly `bytes` (256-byte aligned like cudaMalloc's), so a sanitizer build flags a kernel reading past the end.
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation);
  std::memset(p, 0xFF, bytes);  // like fresh device memory, not zero: reading it unwritten shows (NaN, -1)
  g_allocs[reinterpret_cast<uintptr_t>(p)] = bytes;
  g_in_use += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  std::lock_guard lock(g_mutex);
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == g_allocs.end()) return fail(cudaErrorInvalidDevicePointer);
  g_in_use -= it->second;
  g_allocs.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  if (!stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  const bool dst_dev = is_device(dst, bytes), src_dev = is_device(src, bytes);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToHost: ok = !dst_dev && !src_dev; break;
    case cudaMemcpyHostToDevice: ok = dst_dev && !src_dev; break;
    case cudaMemcpyDeviceToHost: ok = !dst_dev && src_dev; break;
    case cudaMemcpyDeviceToDevice: ok = dst_dev && src_dev; break;
    case cudaMemcpyDefault: break;
    default: return fail(cudaErrorInvalidMemcpyDirection);
  }
  if (!ok) return fail(cudaErrorInvalidValue);  // a range outside any allocation, or the wrong direction
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const cudaError_t pending = take_pending();
  if (pending != cudaSuccess) return pending;
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s) {
  if (!stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (!is_device(dst, bytes)) return fail(cudaErrorInvalidValue);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) { return cudaMemsetAsync(dst, value, bytes, nullptr); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  if (!s || flags > cudaStreamNonBlocking) return fail(cudaErrorInvalidValue);
  *s = reinterpret_cast<cudaStream_t>(new char);  // a unique handle
  std::lock_guard lock(g_mutex);
  g_streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard lock(g_mutex);
  if (!s || !g_streams.erase(s)) return fail(cudaErrorInvalidResourceHandle);
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (!stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
  return take_pending();
}
