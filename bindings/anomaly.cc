// NativeAnomalyBank: glue over native/anomaly. Points go in and scores come out
// through caller-owned typed arrays, one call per batch; the arrays are only
// touched during the (synchronous) call.
#include <cmath>
#include <memory>
#include <string>

#include "../native/anomaly/bank.h"
#include "convert_arrays.h"

namespace whale::bindings {
namespace {

uint32_t to_u32(double v, const char* field) {
  if (!(v >= 0 && v <= 4294967295.0) || std::floor(v) != v)
    throw_invalid(std::string(field) + ": expected an integer in [0, 2^32)");
  return static_cast<uint32_t>(v);
}

anomaly::Params read_params(const Napi::Object& o) {
  anomaly::Params p;
  if (o.Has("method") && !o.Get("method").IsUndefined()) {
    const std::string m = read_string(o, "method");
    if (m == "whale") p.method = anomaly::Method::kWhale;
    else if (m == "art") p.method = anomaly::Method::kArt;
    else if (m == "ensemble") p.method = anomaly::Method::kEnsemble;
    else throw_invalid("method: expected whale, art or ensemble");
  }
  p.threshold = read_number(o, "threshold", p.threshold);
  p.warmup = to_u32(read_number(o, "warmupPoints", p.warmup), "warmupPoints");
  p.refractory = to_u32(read_number(o, "refractoryPoints", p.refractory), "refractoryPoints");
  p.window = to_u32(read_number(o, "window", p.window), "window");
  p.codebook = to_u32(read_number(o, "codebookSize", p.codebook), "codebookSize");
  p.levels = to_u32(read_number(o, "levels", p.levels), "levels");
  p.vigilance = read_number(o, "vigilance", p.vigilance);
  p.spread = read_number(o, "spread", p.spread);
  p.rate_horizon = read_number(o, "rateHorizon", p.rate_horizon);
  p.range_tolerance = read_number(o, "rangeTolerance", p.range_tolerance);
  p.art_window = to_u32(read_number(o, "artWindow", p.art_window), "artWindow");
  p.art_categories = to_u32(read_number(o, "artCategories", p.art_categories), "artCategories");
  p.art_vigilance = read_number(o, "artVigilance", p.art_vigilance);
  p.art_vigilance_low = read_number(o, "artVigilanceLow", p.art_vigilance_low);
  p.art_spread = read_number(o, "artSpread", p.art_spread);
  p.art_learning_rate = read_number(o, "artLearningRate", p.art_learning_rate);
  return p;
}

template <typename Array>
Array arg_typed(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* field,
                const char* what) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_invalid(std::string(field) + ": expected a " + what);
  }
  return info[i].As<Array>();
}

uint32_t arg_u32(const Napi::CallbackInfo& info, size_t i, const char* field) {
  if (info.Length() <= i || !info[i].IsNumber()) throw_invalid(std::string(field) + ": expected a number");
  return to_u32(info[i].As<Napi::Number>().DoubleValue(), field);
}

class NativeAnomalyBank : public Napi::ObjectWrap<NativeAnomalyBank> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeAnomalyBank",
        {InstanceMethod("add", &NativeAnomalyBank::Add), InstanceMethod("reset", &NativeAnomalyBank::Reset),
         InstanceMethod("update", &NativeAnomalyBank::Update),
         InstanceMethod("updateSeries", &NativeAnomalyBank::UpdateSeries),
         InstanceMethod("updateMany", &NativeAnomalyBank::UpdateMany),
         InstanceMethod("stateBytes", &NativeAnomalyBank::StateBytes)});
  }

  explicit NativeAnomalyBank(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeAnomalyBank>(info) {
    guarded(info.Env(), [&] {
      if (info.Length() < 1 || !info[0].IsObject()) throw_invalid("options: expected an object");
      core_ = std::make_unique<anomaly::Bank>(read_params(info[0].As<Napi::Object>()));
    });
  }

 private:
  Napi::Value Add(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), core_->add()); });
  }

  void Reset(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] { core_->reset(arg_u32(info, 0, "series")); });
  }

  Napi::Value StateBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(core_->state_bytes()));
  }

  // update(series, value, timestampMs?) -> score
  Napi::Value Update(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const uint32_t s = arg_u32(info, 0, "series");
      if (info.Length() < 2 || !info[1].IsNumber()) throw_invalid("value: expected a number");
      const double v = info[1].As<Napi::Number>().DoubleValue();
      double t = 0;
      const bool has_t = info.Length() > 2 && !info[2].IsUndefined();
      if (has_t) {
        if (!info[2].IsNumber()) throw_invalid("timestampMs: expected a number");
        t = info[2].As<Napi::Number>().DoubleValue();
      }
      double score = 0;
      uint8_t flag = 0;
      core_->update_series(s, &v, has_t ? &t : nullptr, 1, &score, &flag);
      return Napi::Number::New(info.Env(), score);
    });
  }

  // updateSeries(series, values, timestamps | undefined, scores, flags)
  void UpdateSeries(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      const uint32_t s = arg_u32(info, 0, "series");
      run_batch(info, 1, [&](const double* v, const double* t, size_t n, double* sc, uint8_t* fl) {
        core_->update_series(s, v, t, n, sc, fl);
      });
    });
  }

  // updateMany(seriesIndices: Uint32Array, values, timestamps | undefined, scores, flags)
  void UpdateMany(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      auto idx_js = arg_typed<Napi::Uint32Array>(info, 0, napi_uint32_array, "series", "Uint32Array");
      InArray<uint32_t> idx(idx_js, false);
      run_batch(info, 1, [&](const double* v, const double* t, size_t n, double* sc, uint8_t* fl) {
        if (idx.size() != n) throw_invalid("series: length must equal values'");
        core_->update_many(idx.data(), v, t, n, sc, fl);
      });
    });
  }

  // Reads values, timestamps, scores, flags from info[first...] (no JS runs after), runs fn, writes back.
  template <typename Fn>
  void run_batch(const Napi::CallbackInfo& info, size_t first, Fn fn) {
    auto values_js = arg_typed<Napi::Float64Array>(info, first, napi_float64_array, "values", "Float64Array");
    const bool has_t = info.Length() > first + 1 && !info[first + 1].IsUndefined();
    Napi::Float64Array ts_js;
    if (has_t)
      ts_js = arg_typed<Napi::Float64Array>(info, first + 1, napi_float64_array, "timestampsMs", "Float64Array");
    auto scores_js = arg_typed<Napi::Float64Array>(info, first + 2, napi_float64_array, "scores", "Float64Array");
    auto flags_js = arg_typed<Napi::Uint8Array>(info, first + 3, napi_uint8_array, "anomalies", "Uint8Array");
    InArray<double> values(values_js, false);
    InArray<double> ts;
    if (has_t) ts = InArray<double>(ts_js, false);
    OutArray<double> scores(scores_js, false, false);
    OutArray<uint8_t> flags(flags_js, false, false);
    const size_t n = values.size();
    if (has_t && ts.size() != n) throw_invalid("timestampsMs: length must equal values'");
    if (scores.size() != n || flags.size() != n) throw_invalid("scores: output lengths must equal values'");
    fn(values.data(), has_t ? ts.data() : nullptr, n, scores.data(), flags.data());
    scores.commit();
    flags.commit();
  }

  std::unique_ptr<anomaly::Bank> core_;
};

}  // namespace

void init_anomaly(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeAnomalyBank", NativeAnomalyBank::Define(env));
}

}  // namespace whale::bindings
