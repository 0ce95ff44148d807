// Runs a job on the libuv pool and settles a Promise with its result. The job
// sees only plain C++ data; the JS arrays it reads or writes are kept alive
// by the references the worker holds until it is done.
#pragma once
#include <napi.h>

#include <functional>
#include <utility>
#include <vector>

#include "convert.h"

namespace whale::bindings {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Job = std::function<void()>;
  using Finish = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Job job, Finish finish, std::vector<Napi::ObjectReference> keep)
      : Napi::AsyncWorker(env, "whale:native"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)),
        finish_(std::move(finish)),
        keep_(std::move(keep)) {}

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
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  Finish finish_;
  std::vector<Napi::ObjectReference> keep_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Runs job now (sync) or on the pool (async), then returns finish(env) or a
// Promise of it.
inline Napi::Value run_job(Napi::Env env, bool async, PromiseWorker::Job job,
                           PromiseWorker::Finish finish, std::vector<Napi::ObjectReference> keep) {
  if (!async) {
    guarded(env, [&] { job(); });
    return finish(env);
  }
  auto* worker = new PromiseWorker(env, std::move(job), std::move(finish), std::move(keep));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace whale::bindings
