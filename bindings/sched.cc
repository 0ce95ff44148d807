// NativeScheduler: glue over native/sched. Submissions come in as one
// Float64Array of records per call and decisions go out into a caller-owned
// Uint32Array per poll, so the per-request cost is not an N-API call. The
// arrays are only touched during the call.
#include <cmath>
#include <memory>
#include <vector>

#include "../native/sched/scheduler.h"
#include "convert.h"

namespace whale::bindings {
namespace {

// Submission record layout (Float64Array): id, model, tenant, priority, arrivalUs, deadlineUs.
constexpr size_t kRecordWords = 6;

uint32_t to_u32(double v, const char* field) {
  if (!(v >= 0 && v <= 4294967295.0) || std::floor(v) != v) {
    throw_invalid(std::string(field) + ": expected an integer in [0, 2^32)");
  }
  return static_cast<uint32_t>(v);
}

// Microseconds; +Infinity (or anything beyond int64) means "no deadline".
sched::Micros to_micros(double v, const char* field, bool allow_infinite) {
  if (std::isnan(v) || (!allow_infinite && !std::isfinite(v)))
    throw_invalid(std::string(field) + ": expected a finite number");
  if (v >= 9.2e18) return sched::kNoDeadline;
  if (v <= -9.2e18) throw_invalid(std::string(field) + ": out of range");
  return static_cast<sched::Micros>(std::floor(v));
}

uint32_t arg_u32(const Napi::CallbackInfo& info, size_t i, const char* field) {
  if (info.Length() <= i || !info[i].IsNumber()) throw_invalid(std::string(field) + ": expected a number");
  return to_u32(info[i].As<Napi::Number>().DoubleValue(), field);
}

template <typename Array>
Array arg_typed(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* field,
                const char* what) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_invalid(std::string(field) + ": expected a " + what);
  }
  return info[i].As<Array>();
}

class NativeScheduler : public Napi::ObjectWrap<NativeScheduler> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeScheduler",
        {InstanceMethod("setTenant", &NativeScheduler::SetTenant),
         InstanceMethod("addModel", &NativeScheduler::AddModel),
         InstanceMethod("removeModel", &NativeScheduler::RemoveModel),
         InstanceMethod("submit", &NativeScheduler::Submit), InstanceMethod("cancel", &NativeScheduler::Cancel),
         InstanceMethod("complete", &NativeScheduler::Complete), InstanceMethod("poll", &NativeScheduler::Poll)});
  }

  explicit NativeScheduler(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeScheduler>(info) {
    guarded(info.Env(), [&] { core_ = std::make_unique<sched::Scheduler>(arg_u32(info, 0, "priorityClasses")); });
  }

 private:
  void SetTenant(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      if (info.Length() < 2 || !info[1].IsNumber()) throw_invalid("weight: expected a number");
      core_->set_tenant_weight(arg_u32(info, 0, "tenant"), info[1].As<Napi::Number>().DoubleValue());
    });
  }

  void AddModel(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] {
      const uint32_t id = arg_u32(info, 0, "model");
      if (info.Length() < 2 || !info[1].IsObject()) throw_invalid("config: expected an object");
      Napi::Object o = info[1].As<Napi::Object>();
      sched::ModelConfig c;
      c.max_batch_size = to_u32(read_number(o, "maxBatchSize", 1), "maxBatchSize");
      c.max_queue_delay_us = to_micros(read_number(o, "maxQueueDelayUs", 0), "maxQueueDelayUs", false);
      c.max_queue_size = to_u32(read_number(o, "maxQueueSize", 1), "maxQueueSize");
      c.instances = to_u32(read_number(o, "instances", 1), "instances");
      c.dispatch_when_idle = read_bool(o, "dispatchWhenIdle", false);
      Napi::Value pref = o.Get("preferredBatchSizes");
      if (!pref.IsUndefined()) {
        if (!pref.IsArray()) throw_invalid("preferredBatchSizes: expected an array");
        Napi::Array a = pref.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
          Napi::Value v = a.Get(i);
          if (!v.IsNumber()) throw_invalid("preferredBatchSizes: expected numbers");
          c.preferred.push_back(to_u32(v.As<Napi::Number>().DoubleValue(), "preferredBatchSizes"));
        }
      }
      core_->add_model(id, std::move(c));
    });
  }

  Napi::Value RemoveModel(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      std::vector<uint32_t> ids = core_->remove_model(arg_u32(info, 0, "model"));
      Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), ids.size());
      std::copy(ids.begin(), ids.end(), out.Data());
      return out;
    });
  }

  // submit(records, count, status): status[i] = 0 accepted, 1 overloaded, 2 unknown model.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto records = arg_typed<Napi::Float64Array>(info, 0, napi_float64_array, "records", "Float64Array");
      const uint32_t count = arg_u32(info, 1, "count");
      auto status = arg_typed<Napi::Uint8Array>(info, 2, napi_uint8_array, "status", "Uint8Array");
      if (static_cast<size_t>(count) * kRecordWords > records.ElementLength())
        throw_invalid("count: more records than the array holds");
      if (count > status.ElementLength()) throw_invalid("status: shorter than count");
      // Convert every record first, so a bad one rejects the call before any is queued.
      const double* r = records.Data();
      pending_.resize(count);
      for (uint32_t i = 0; i < count; ++i, r += kRecordWords) {
        sched::Submission& s = pending_[i];
        s.id = to_u32(r[0], "id");
        s.model = to_u32(r[1], "model");
        s.tenant = to_u32(r[2], "tenant");
        s.priority = to_u32(r[3], "priority");
        if (s.priority >= core_->priority_classes()) throw_invalid("priority: beyond the configured classes");
        s.arrival = to_micros(r[4], "arrivalUs", false);
        s.deadline = to_micros(r[5], "deadlineUs", true);
      }
      uint8_t* st = status.Data();
      uint32_t accepted = 0;
      for (uint32_t i = 0; i < count; ++i) {
        const sched::Admission a = core_->submit(pending_[i]);
        st[i] = static_cast<uint8_t>(a);
        accepted += a == sched::Admission::kAccepted;
      }
      return Napi::Number::New(info.Env(), accepted);
    });
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Boolean::New(info.Env(), core_->cancel(arg_u32(info, 0, "id")));
    });
  }

  void Complete(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] { core_->complete(arg_u32(info, 0, "model")); });
  }

  // poll(nowUs, out, meta) -> words written; meta[0] = next wake (µs, Infinity if none), meta[1] = more.
  Napi::Value Poll(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsNumber()) throw_invalid("nowUs: expected a number");
      const sched::Micros now = to_micros(info[0].As<Napi::Number>().DoubleValue(), "nowUs", false);
      auto out = arg_typed<Napi::Uint32Array>(info, 1, napi_uint32_array, "out", "Uint32Array");
      auto meta = arg_typed<Napi::Float64Array>(info, 2, napi_float64_array, "meta", "Float64Array");
      if (meta.ElementLength() < 2) throw_invalid("meta: needs 2 elements");
      const sched::PollResult r = core_->poll(now, out.Data(), out.ElementLength());
      meta[0] = r.next_wake == sched::kNoDeadline ? INFINITY : static_cast<double>(r.next_wake);
      meta[1] = r.more ? 1 : 0;
      return Napi::Number::New(info.Env(), static_cast<double>(r.words));
    });
  }

  std::unique_ptr<sched::Scheduler> core_;
  std::vector<sched::Submission> pending_;
};

}  // namespace

void init_sched(Napi::Env env, Napi::Object exports) { exports.Set("NativeScheduler", NativeScheduler::Define(env)); }

}  // namespace whale::bindings
