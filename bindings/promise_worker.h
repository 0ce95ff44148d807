// Runs a job on the libuv pool and settles a Promise with its result. The job
// sees only native memory (see convert_arrays.h): what it reads was copied or
// created before it was queued, and finish() copies results back on the JS
// thread once it is done.
#pragma once
#include <napi.h>

#include <functional>
#include <utility>

#include "convert.h"

namespace whale::bindings {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Job = std::function<void()>;
  using Finish = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Job job, Finish finish)
      : Napi::AsyncWorker(env, "whale:native"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)),
        finish_(std::move(finish)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      job_();
    } catch (const std::exception& e) {
      failed_ = true;
      error_ = capture(e);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failed_) {
      deferred_.Reject(to_js(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(finish_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(to_js(env, capture(e)).Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  Finish finish_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Runs job now (sync) or on the pool (async), then returns finish(env) or a
// Promise of it. Whatever job and finish capture is released on the JS thread.
inline Napi::Value run_job(Napi::Env env, bool async, PromiseWorker::Job job, PromiseWorker::Finish finish) {
  if (!async) {
    guarded(env, [&] { job(); });
    return finish(env);
  }
  auto* worker = new PromiseWorker(env, std::move(job), std::move(finish));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace whale::bindings
