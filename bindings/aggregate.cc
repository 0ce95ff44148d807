// aggregate(opts, async), distances(opts, async), nonFiniteCounts(clients),
// serverOptStep(opts, async): thin glue over native/aggregate.
#include <memory>

#include "../native/aggregate/run.h"
#include "promise_worker.h"

namespace whale::bindings {
namespace {

aggregate::Strategy read_strategy(const Napi::Object& o) {
  std::string s = read_string(o, "strategy");
  if (s == "fedavg") return aggregate::Strategy::kFedAvg;
  if (s == "median") return aggregate::Strategy::kMedian;
  if (s == "trimmed-mean") return aggregate::Strategy::kTrimmedMean;
  if (s == "krum") return aggregate::Strategy::kKrum;
  throw_invalid("strategy: unknown strategy '" + s + "'");
}

size_t read_count(const Napi::Object& o, const char* field, double fallback) {
  double v = read_number(o, field, fallback);
  if (!(v >= 0) || v != static_cast<double>(static_cast<size_t>(v))) {
    throw_invalid(std::string(field) + ": expected a non-negative integer");
  }
  return static_cast<size_t>(v);
}

Napi::Value Aggregate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    std::vector<Napi::ObjectReference> keep;
    auto req = std::make_shared<aggregate::Request>();
    req->strategy = read_strategy(o);
    req->updates = read_rows(o.Get("clients"), &keep);
    Napi::Float64Array w = read_f64(o.Get("weights"), "weights");
    req->weights.assign(w.Data(), w.Data() + w.ElementLength());
    req->beta = read_number(o, "beta", 0.1);
    req->f = read_count(o, "f", 0);
    req->m = read_count(o, "m", 1);
    req->device = read_device(o);
    req->check_finite = read_bool(o, "checkFinite", true);
    Napi::Float32Array out = read_f32(o.Get("out"), "out");
    if (out.ElementLength() != req->updates.params) throw_invalid("out: length must equal the update length");
    keep.push_back(Napi::Persistent(static_cast<Napi::Object>(out)));
    float* out_ptr = out.Data();
    auto result = std::make_shared<aggregate::Result>();
    return run_job(
        env, read_async(info), [req, result, out_ptr] { *result = aggregate::run(*req, out_ptr); },
        [result](Napi::Env e) -> Napi::Value {
          Napi::Object r = Napi::Object::New(e);
          r.Set("device", result->device.name());
          if (!result->scores.empty()) {
            auto sel = Napi::Uint32Array::New(e, result->selected.size());
            for (size_t i = 0; i < result->selected.size(); ++i) sel[i] = static_cast<uint32_t>(result->selected[i]);
            auto sc = Napi::Float64Array::New(e, result->scores.size());
            for (size_t i = 0; i < result->scores.size(); ++i) sc[i] = result->scores[i];
            r.Set("selected", sel);
            r.Set("scores", sc);
          }
          return r;
        },
        std::move(keep));
  });
}

Napi::Value Distances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    std::vector<Napi::ObjectReference> keep;
    auto u = std::make_shared<aggregate::ClientUpdates>(read_rows(o.Get("clients"), &keep));
    Device device = read_device(o);
    bool check = read_bool(o, "checkFinite", true);
    Napi::Float64Array out = read_f64(o.Get("out"), "out");
    if (out.ElementLength() != u->clients() * u->clients()) throw_invalid("out: length must be clients^2");
    keep.push_back(Napi::Persistent(static_cast<Napi::Object>(out)));
    double* out_ptr = out.Data();
    auto used = std::make_shared<Device>();
    return run_job(
        env, read_async(info),
        [u, device, check, out_ptr, used] { *used = aggregate::distances(*u, device, check, out_ptr); },
        [used](Napi::Env e) -> Napi::Value { return Napi::String::New(e, used->name()); }, std::move(keep));
  });
}

Napi::Value NonFiniteCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    aggregate::ClientUpdates u = read_rows(info[0], nullptr);
    std::vector<size_t> counts = aggregate::non_finite_counts(u);
    auto arr = Napi::Float64Array::New(env, counts.size());
    for (size_t i = 0; i < counts.size(); ++i) arr[i] = static_cast<double>(counts[i]);
    return arr;
  });
}

aggregate::ServerOptKind read_opt_kind(const Napi::Object& o) {
  std::string s = read_string(o, "optimizer");
  if (s == "fedavgm") return aggregate::ServerOptKind::kAvgM;
  if (s == "fedadam") return aggregate::ServerOptKind::kAdam;
  if (s == "fedyogi") return aggregate::ServerOptKind::kYogi;
  if (s == "fedadagrad") return aggregate::ServerOptKind::kAdagrad;
  throw_invalid("optimizer: unknown server optimizer '" + s + "'");
}

Napi::Value ServerOptStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    aggregate::ServerOptConfig c;
    c.kind = read_opt_kind(o);
    c.lr = read_number(o, "lr", c.lr);
    c.beta1 = read_number(o, "beta1", c.beta1);
    c.beta2 = read_number(o, "beta2", c.beta2);
    c.tau = read_number(o, "tau", c.tau);
    aggregate::check_server_opt(c);
    Device device = read_device(o);
    const char* names[] = {"global", "aggregate", "m", "v"};
    std::vector<Napi::ObjectReference> keep;
    float* ptr[4];
    size_t p = 0;
    for (int k = 0; k < 4; ++k) {
      Napi::Float32Array a = read_f32(o.Get(names[k]), names[k]);
      if (k == 0) p = a.ElementLength();
      if (a.ElementLength() != p) throw_invalid(std::string(names[k]) + ": length must equal global's");
      ptr[k] = a.Data();
      keep.push_back(Napi::Persistent(static_cast<Napi::Object>(a)));
    }
    auto used = std::make_shared<Device>();
    return run_job(
        env, read_async(info),
        [c, device, p, ptr, used] { *used = aggregate::server_opt(c, device, ptr[0], ptr[1], ptr[2], ptr[3], p); },
        [used](Napi::Env e) -> Napi::Value { return Napi::String::New(e, used->name()); }, std::move(keep));
  });
}

}  // namespace

void init_aggregate(Napi::Env env, Napi::Object exports) {
  exports.Set("aggregate", Napi::Function::New(env, Aggregate, "aggregate"));
  exports.Set("distances", Napi::Function::New(env, Distances, "distances"));
  exports.Set("nonFiniteCounts", Napi::Function::New(env, NonFiniteCounts, "nonFiniteCounts"));
  exports.Set("serverOptStep", Napi::Function::New(env, ServerOptStep, "serverOptStep"));
}

}  // namespace whale::bindings
