// aggregate(opts, async), distances(opts, async), nonFiniteCounts(clients),
// serverOptStep(opts, async): thin glue over native/aggregate. Every option is
// read (getters may run JS) before any array's memory is taken.
#include <memory>

#include "../native/aggregate/run.h"
#include "convert_arrays.h"
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
  if (!(v >= 0) || v > 9007199254740992.0 || v != static_cast<double>(static_cast<size_t>(v))) {
    throw_invalid(std::string(field) + ": expected a non-negative integer");
  }
  return static_cast<size_t>(v);
}

size_t read_memory_limit(const Napi::Object& o) {
  const double v = read_number(o, "maxMemoryBytes", 18446744073709551615.0);
  if (!(v >= 0)) throw_invalid("maxMemoryBytes: expected a number >= 0");
  return v >= 18446744073709551615.0 ? SIZE_MAX : static_cast<size_t>(v);
}

// The output array: the caller's `out` when given, else a new one (returned as `params`).
Napi::Float32Array output_array(Napi::Env env, const Napi::Value& v, size_t params, bool& fresh) {
  fresh = v.IsUndefined();
  if (fresh) return new_result_f32(env, params);
  Napi::Float32Array out = read_f32(v, "out");
  if (typed_array_info(env, out).length != params) throw_invalid("out: length must equal the update length");
  return out;
}

Napi::Value Aggregate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const bool async = read_async(info);
    auto req = std::make_shared<aggregate::Request>();
    req->strategy = read_strategy(o);
    std::vector<Napi::Float32Array> rows = gather_rows(o.Get("clients"));
    Napi::Float64Array w = read_f64(o.Get("weights"), "weights");
    req->weights.assign(w.Data(), w.Data() + w.ElementLength());
    req->beta = read_number(o, "beta", 0.1);
    req->f = read_count(o, "f", 0);
    req->m = read_count(o, "m", 1);
    req->device = read_device(o);
    req->check_finite = read_bool(o, "checkFinite", true);
    req->max_memory_bytes = read_memory_limit(o);
    Napi::Value out_value = o.Get("out");
    // No JS runs from here on.
    const size_t copy = rows_copy_bytes(rows, async);
    const size_t params = rows.empty() ? 0 : typed_array_info(env, rows[0]).length;
    aggregate::check_memory(*req, rows.size(), params, copy);
    bool fresh = false;
    Napi::Float32Array out_js = output_array(env, out_value, params, fresh);
    auto held = std::make_shared<HeldRows>(hold_rows(rows, async));
    auto out = std::make_shared<OutArray<float>>(out_js, async, false, fresh);
    req->updates = held->view;
    auto result = std::make_shared<aggregate::Result>();
    return run_job(
        env, async, [req, held, out, result] { *result = aggregate::run(*req, out->data()); },
        [held, out, result, fresh](Napi::Env e) -> Napi::Value {
          if (!out->still_valid()) throw_changed("out");
          out->commit();
          Napi::Object r = Napi::Object::New(e);
          r.Set("device", result->device.name());
          if (fresh) r.Set("params", out->value());
          if (!result->scores.empty()) {
            auto sel = Napi::Uint32Array::New(e, result->selected.size());
            for (size_t i = 0; i < result->selected.size(); ++i) sel[i] = static_cast<uint32_t>(result->selected[i]);
            auto sc = Napi::Float64Array::New(e, result->scores.size());
            for (size_t i = 0; i < result->scores.size(); ++i) sc[i] = result->scores[i];
            r.Set("selected", sel);
            r.Set("scores", sc);
          }
          return r;
        });
  });
}

Napi::Value Distances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const bool async = read_async(info);
    Device device = read_device(o);
    bool check = read_bool(o, "checkFinite", true);
    Napi::Float64Array out_js = read_f64(o.Get("out"), "out");
    std::vector<Napi::Float32Array> rows = gather_rows(o.Get("clients"));
    rows_copy_bytes(rows, async);
    if (typed_array_info(env, out_js).length != rows.size() * rows.size())
      throw_invalid("out: length must be clients^2");
    auto held = std::make_shared<HeldRows>(hold_rows(rows, async));
    auto out = std::make_shared<OutArray<double>>(out_js, async, false);
    auto used = std::make_shared<Device>();
    return run_job(
        env, async,
        [held, out, device, check, used] { *used = aggregate::distances(held->view, device, check, out->data()); },
        [held, out, used](Napi::Env e) -> Napi::Value {
          if (!out->still_valid()) throw_changed("out");
          out->commit();
          return Napi::String::New(e, used->name());
        });
  });
}

Napi::Value NonFiniteCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::vector<Napi::Float32Array> rows = gather_rows(info[0]);
    rows_copy_bytes(rows, false);
    HeldRows held = hold_rows(rows, false);
    std::vector<size_t> counts = aggregate::non_finite_counts(held.view);
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

// global, m and v are updated in place (on copies for async jobs, written back
// only when the whole step succeeded); aggregate is read.
struct StepArrays {
  OutArray<float> global, m, v;
  InArray<float> aggregate;
};

Napi::Value ServerOptStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const bool async = read_async(info);
    aggregate::ServerOptConfig c;
    c.kind = read_opt_kind(o);
    c.lr = read_number(o, "lr", c.lr);
    c.beta1 = read_number(o, "beta1", c.beta1);
    c.beta2 = read_number(o, "beta2", c.beta2);
    c.tau = read_number(o, "tau", c.tau);
    aggregate::check_server_opt(c);
    Device device = read_device(o);
    const char* names[] = {"global", "aggregate", "m", "v"};
    Napi::Value values[4];
    for (int k = 0; k < 4; ++k) values[k] = o.Get(names[k]);
    // No JS runs from here on.
    Napi::Float32Array arrays[4];
    size_t p = 0;
    for (int k = 0; k < 4; ++k) {
      arrays[k] = read_f32(values[k], names[k]);
      const size_t len = typed_array_info(env, arrays[k]).length;
      if (k == 0) p = len;
      if (len != p) throw_invalid(std::string(names[k]) + ": length must equal global's");
    }
    auto a = std::make_shared<StepArrays>(
        StepArrays{OutArray<float>(arrays[0], async, true), OutArray<float>(arrays[2], async, true),
                   OutArray<float>(arrays[3], async, true), InArray<float>(arrays[1], async)});
    auto used = std::make_shared<Device>();
    return run_job(
        env, async,
        [c, device, p, a, used] {
          *used = aggregate::server_opt(c, device, a->global.data(), a->aggregate.data(), a->m.data(), a->v.data(), p);
        },
        [a, used](Napi::Env e) -> Napi::Value {
          const char* changed = !a->global.still_valid() ? "global"
                                : !a->m.still_valid()    ? "m"
                                : !a->v.still_valid()    ? "v"
                                                         : nullptr;
          if (changed) throw_changed(changed);
          a->global.commit();
          a->m.commit();
          a->v.commit();
          return Napi::String::New(e, used->name());
        });
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
