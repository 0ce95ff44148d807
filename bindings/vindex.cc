// NativeVectorIndex: glue over native/vindex. Sync calls read JS memory in
// place (the JS thread is blocked in them); async searches and training copy
// their inputs first and hand back arrays created when the job is done (see
// convert_arrays.h). The job holds the index by shared_ptr, so dropping the JS
// object meanwhile is safe.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../native/common/device.h"
#include "../native/vindex/index.h"
#include "../native/vindex/vindex_cuda.h"
#include "convert_arrays.h"
#include "promise_worker.h"

namespace whale::bindings {
namespace {

using vindex::Index;

vindex::Metric read_metric(const Napi::Object& o) {
  const std::string s = o.Has("metric") ? read_string(o, "metric") : "l2";
  if (s == "l2") return vindex::Metric::kL2;
  if (s == "ip") return vindex::Metric::kIP;
  if (s == "cosine") return vindex::Metric::kCosine;
  throw_invalid("metric: expected 'l2', 'ip' or 'cosine', got '" + s + "'");
}

vindex::Storage read_storage(const Napi::Object& o) {
  const std::string s = o.Has("storage") ? read_string(o, "storage") : "f32";
  if (s == "f32") return vindex::Storage::kF32;
  if (s == "int8") return vindex::Storage::kInt8;
  throw_invalid("storage: expected 'f32' or 'int8', got '" + s + "'");
}

uint32_t read_u32(const Napi::Object& o, const char* field, double fallback, double min, double max) {
  const double v = read_number(o, field, fallback);
  if (!(v >= min && v <= max) || std::floor(v) != v) {
    throw_invalid(std::string(field) + ": expected an integer in [" + std::to_string(static_cast<long long>(min)) +
                  ", " + std::to_string(static_cast<long long>(max)) + "], got " + std::to_string(v));
  }
  return static_cast<uint32_t>(v);
}

template <typename Array>
Array read_typed(const Napi::Value& v, napi_typedarray_type type, const char* field, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_invalid(std::string(field) + ": expected a " + what);
  return v.As<Array>();
}

struct SearchOut {
  std::vector<uint32_t> labels;
  std::vector<float> dists;
  std::string device;
};

class NativeVectorIndex : public Napi::ObjectWrap<NativeVectorIndex> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeVectorIndex",
        {InstanceMethod("add", &NativeVectorIndex::Add), InstanceMethod("addBlobs", &NativeVectorIndex::AddBlobs),
         InstanceMethod("remove", &NativeVectorIndex::Remove), InstanceMethod("train", &NativeVectorIndex::Train),
         InstanceMethod("search", &NativeVectorIndex::Search),
         InstanceMethod("setNprobe", &NativeVectorIndex::SetNprobe), InstanceMethod("stats", &NativeVectorIndex::Stats),
         InstanceMethod("centroids", &NativeVectorIndex::Centroids)});
  }

  explicit NativeVectorIndex(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeVectorIndex>(info) {
    guarded(info.Env(), [&] {
      Napi::Object o = read_opts(info);
      vindex::IndexConfig c;
      c.dim = read_u32(o, "dim", 0, 1, vindex::kMaxDim);
      c.metric = read_metric(o);
      c.storage = read_storage(o);
      c.block_size = read_u32(o, "blockSize", 64, 32, 4096);
      c.nlist = read_u32(o, "nlist", 0, 0, 1 << 20);
      c.nprobe = read_u32(o, "nprobe", 8, 1, 1 << 20);
      index_ = std::make_shared<Index>(c);
    });
  }

 private:
  size_t dim() const { return index_->config().dim; }

  // add(labels: Uint32Array, vectors: Float32Array)
  void Add(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      auto labels_js = read_typed<Napi::Uint32Array>(info[0], napi_uint32_array, "labels", "Uint32Array");
      auto vectors_js = read_f32(info[1], "vectors");
      InArray<uint32_t> labels(labels_js, false);
      InArray<float> vectors(vectors_js, false);
      if (vectors.size() != labels.size() * dim()) {
        throw_invalid("vectors: expected labels.length x dim = " + std::to_string(labels.size() * dim()) +
                      " values, got " + std::to_string(vectors.size()));
      }
      index_->add(labels.data(), labels.size(), vectors.data());
    });
  }

  // addBlobs(labels: Uint32Array, blobs: Uint8Array[])
  void AddBlobs(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      auto labels_js = read_typed<Napi::Uint32Array>(info[0], napi_uint32_array, "labels", "Uint32Array");
      if (info.Length() < 2 || !info[1].IsArray()) throw_invalid("blobs: expected an array of Uint8Array");
      Napi::Array arr = info[1].As<Napi::Array>();
      std::vector<Napi::Uint8Array> blobs_js;
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        blobs_js.push_back(read_typed<Napi::Uint8Array>(arr.Get(i), napi_uint8_array,
                                                        ("blobs[" + std::to_string(i) + "]").c_str(), "Uint8Array"));
      }
      // Every element is read; no JS runs from here on.
      InArray<uint32_t> labels(labels_js, false);
      if (blobs_js.size() != labels.size()) throw_invalid("blobs: expected one blob per label");
      std::vector<InArray<uint8_t>> blobs;
      std::vector<const uint8_t*> ptrs;
      std::vector<size_t> sizes;
      blobs.reserve(blobs_js.size());
      for (const auto& b : blobs_js) {
        blobs.emplace_back(b, false);
        ptrs.push_back(blobs.back().data());
        sizes.push_back(blobs.back().size());
      }
      index_->add_blobs(labels.data(), labels.size(), ptrs.data(), sizes.data());
    });
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      InArray<uint32_t> labels(read_typed<Napi::Uint32Array>(info[0], napi_uint32_array, "labels", "Uint32Array"),
                               false);
      return Napi::Number::New(info.Env(), static_cast<double>(index_->remove(labels.data(), labels.size())));
    });
  }

  void SetNprobe(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      if (info.Length() < 1 || !info[0].IsNumber()) throw_invalid("nprobe: expected a number");
      const double v = info[0].As<Napi::Number>().DoubleValue();
      if (!(v >= 1 && v <= (1 << 20)) || std::floor(v) != v) throw_invalid("nprobe: expected an integer >= 1");
      index_->set_nprobe(static_cast<uint32_t>(v));
    });
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object r = Napi::Object::New(info.Env());
      r.Set("size", static_cast<double>(index_->size()));
      r.Set("trained", index_->trained());
      r.Set("memoryBytes", static_cast<double>(index_->memory_bytes()));
      r.Set("nprobe", index_->config().nprobe);
      return r;
    });
  }

  Napi::Value Centroids(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const std::vector<float> c = index_->centroids();
      Napi::Float32Array out = Napi::Float32Array::New(info.Env(), c.size());
      std::copy(c.begin(), c.end(), out.Data());
      return out;
    });
  }

  // train({ samples?, iterations, seed, parallel }, async): iterations 0 with nlist samples restores saved centroids.
  Napi::Value Train(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = read_opts(info);
      const bool async = read_async(info);
      const uint32_t iterations = read_u32(o, "iterations", 10, 0, 1000);
      const uint32_t seed = read_u32(o, "seed", 1, 0, 4294967295.0);
      const bool parallel = read_bool(o, "parallel", true);
      Napi::Value samples_js = o.Get("samples");
      std::shared_ptr<InArray<float>> samples;
      if (!samples_js.IsUndefined()) {
        samples = std::make_shared<InArray<float>>(read_f32(samples_js, "samples"), async);
        if (samples->size() % dim() != 0) throw_invalid("samples: length must be a multiple of dim");
      }
      std::shared_ptr<Index> index = index_;
      return run_job(
          env, async,
          [=] {
            const float* x = samples ? samples->data() : nullptr;
            index->train(x, samples ? samples->size() / index->config().dim : 0, iterations, seed, parallel);
          },
          [samples](Napi::Env e) -> Napi::Value { return e.Undefined(); });
    });
  }

  // search({ queries, k, nprobe?, exact?, allow?, parallel?, device?, deviceIndex? }, async)
  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = read_opts(info);
      const bool async = read_async(info);
      Napi::Value queries_js = o.Get("queries");
      Napi::Value allow_js = o.Get("allow");
      vindex::SearchParams p;
      p.k = read_u32(o, "k", 10, 1, vindex::kMaxK);
      p.nprobe = read_u32(o, "nprobe", 0, 0, 1 << 20);
      p.exact = read_bool(o, "exact", false);
      p.parallel = read_bool(o, "parallel", true);
      Device requested = read_device(o);
      // No JS runs from here on.
      auto queries = std::make_shared<InArray<float>>(read_f32(queries_js, "queries"), async);
      std::shared_ptr<InArray<uint8_t>> allow;
      if (!allow_js.IsUndefined())
        allow = std::make_shared<InArray<uint8_t>>(
            read_typed<Napi::Uint8Array>(allow_js, napi_uint8_array, "allow", "Uint8Array"), async);
      if (queries->size() % dim() != 0)
        throw_invalid("queries: length must be a multiple of dim " + std::to_string(dim()));
      const size_t nq = queries->size() / dim();
      const bool exact_scan = p.exact || !index_->trained();
      // The GPU runs the exact scan only: an IVF search stays on the CPU unless a device is named.
      if (requested.kind == Device::Kind::kAuto && (!exact_scan || p.k > vindex::cuda::kMaxK))
        requested.kind = Device::Kind::kCpu;
      const size_t row_bytes = index_->config().storage == vindex::Storage::kF32 ? dim() * 4 : dim();
      const Device device = resolve_device(requested, index_->size() * row_bytes * (nq > 0 ? 1 : 0));
      auto out = std::make_shared<SearchOut>();
      out->labels.resize(nq * p.k);
      out->dists.resize(nq * p.k);
      out->device = device.name();
      std::shared_ptr<Index> index = index_;
      return run_job(
          env, async,
          [=]() mutable {
            if (allow) p.allow = allow->data(), p.allow_bytes = allow->size();
            if (device.is_cuda())
              index->search_cuda(device.index, queries->data(), nq, p, out->labels.data(), out->dists.data());
            else index->search(queries->data(), nq, p, out->labels.data(), out->dists.data());
          },
          [out, queries, allow](Napi::Env e) -> Napi::Value {
            Napi::Object r = Napi::Object::New(e);
            Napi::Uint32Array l = Napi::Uint32Array::New(e, out->labels.size());
            Napi::Float32Array d = Napi::Float32Array::New(e, out->dists.size());
            std::copy(out->labels.begin(), out->labels.end(), l.Data());
            std::copy(out->dists.begin(), out->dists.end(), d.Data());
            r.Set("labels", l);
            r.Set("distances", d);
            r.Set("device", out->device);
            return r;
          });
    });
  }

  std::shared_ptr<Index> index_;
};

}  // namespace

void init_vindex(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeVectorIndex", NativeVectorIndex::Define(env));
}

}  // namespace whale::bindings
