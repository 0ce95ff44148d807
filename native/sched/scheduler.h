// The scheduler's hot loop: per-model queues, strict priority classes, weighted
// fairness across tenants (stride scheduling with a virtual time), earliest
// deadline first within a tenant, Triton-style dynamic batch formation and
// deadline expiry, with an optional work-conserving rule (dispatch_when_idle).
// Single-threaded by design: the JS thread owns it and talks
// to it in batches (submissions in, a stream of decisions out).
//
// src/core/processing/scheduler-reference.ts implements exactly the same
// semantics in TypeScript; the tests compare the two decision streams.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "queues.h"

namespace whale::sched {

struct ModelConfig {
  uint32_t max_batch_size = 1;
  // Sizes dispatched at once when reachable (sorted, unique, <= max_batch_size).
  // Empty means {max_batch_size}.
  std::vector<uint32_t> preferred;
  Micros max_queue_delay_us = 0;
  uint32_t max_queue_size = 1;
  uint32_t instances = 1;
  // Work-conserving dispatch: while no batch of the model is running, whatever is
  // queued (up to max_batch_size) is dispatched at once, without waiting for a
  // preferred size or the delay. With a batch running, Triton's rule applies to the
  // other instances; when the last batch completes, the queue goes at once again.
  bool dispatch_when_idle = false;
};

struct Submission {
  uint32_t id = 0;  // chosen by the caller; free again once the request left the queue
  uint32_t model = 0;
  uint32_t tenant = 0;
  uint32_t priority = 0;  // 0 = highest class
  Micros arrival = 0;
  Micros deadline = kNoDeadline;
};

enum class Admission : uint8_t { kAccepted = 0, kOverloaded = 1, kUnknownModel = 2 };

// Decision stream written by poll(): [kOpExpired, id] or [kOpBatch, model, n, id_1 .. id_n].
inline constexpr uint32_t kOpBatch = 1;
inline constexpr uint32_t kOpExpired = 2;

struct PollResult {
  size_t words = 0;
  // Earliest time a later poll can decide something new (kNoDeadline: nothing pending).
  Micros next_wake = kNoDeadline;
  // The output buffer filled up: poll again before waiting.
  bool more = false;
};

class Scheduler {
 public:
  explicit Scheduler(uint32_t priority_classes);

  void set_tenant_weight(uint32_t tenant, double weight);
  void add_model(uint32_t model, ModelConfig config);
  // Drops the model and returns the ids still queued for it, oldest first.
  std::vector<uint32_t> remove_model(uint32_t model);
  Admission submit(const Submission& s);
  // Removes a queued request; false when it is not queued (already dispatched, expired, unknown).
  bool cancel(uint32_t id);
  // A batch of `model` finished: one more instance is free. Ignored for removed models.
  void complete(uint32_t model);
  PollResult poll(Micros now, uint32_t* out, size_t capacity);

  size_t queued(uint32_t model) const;
  uint32_t running(uint32_t model) const;
  uint32_t priority_classes() const { return classes_; }

 private:
  struct Model {
    ModelConfig config;
    std::vector<PriorityClass> classes;
    Arrivals arrivals;
    EntryHeap deadlines;
    uint32_t queued = 0;
    uint32_t running = 0;
  };

  bool alive(const Entry& e) const;
  bool alive(const ArrivalEntry& a) const;
  void drop(Model& m, Slot& s);
  uint32_t pick(Model& m);
  uint32_t batch_target(Model& m, Micros now);
  double stride(uint32_t tenant) const;
  Micros next_wake(Model& m);
  Model* find(uint32_t model);

  uint32_t classes_;
  uint64_t next_seq_ = 1;
  std::map<uint32_t, Model> models_;
  std::vector<Slot> slots_;
  std::vector<double> strides_;
};

}  // namespace whale::sched
