#include "scheduler.h"

#include <cmath>
#include <string>

#include "../common/error.h"

namespace whale::sched {
namespace {

// Request ids index a slot table; the caller recycles them, so they stay small.
constexpr uint32_t kMaxId = 1u << 24;

[[noreturn]] void invalid(const std::string& message) { throw EngineError(kErrInvalidArg, message); }

Micros add_saturating(Micros a, Micros b) { return a > kNoDeadline - b ? kNoDeadline : a + b; }

}  // namespace

Scheduler::Scheduler(uint32_t priority_classes) : classes_(priority_classes) {
  if (priority_classes < 1 || priority_classes > 64) invalid("priorityClasses: expected an integer in [1, 64]");
}

void Scheduler::set_tenant_weight(uint32_t tenant, double weight) {
  if (!(weight > 0) || !std::isfinite(weight)) invalid("tenants: weight must be a finite number > 0");
  if (tenant >= kMaxId) invalid("tenant: id out of range");
  if (tenant >= strides_.size()) strides_.resize(tenant + 1, 1.0);
  strides_[tenant] = 1.0 / weight;
}

double Scheduler::stride(uint32_t tenant) const { return tenant < strides_.size() ? strides_[tenant] : 1.0; }

void Scheduler::add_model(uint32_t model, ModelConfig c) {
  if (models_.count(model)) invalid("model: id " + std::to_string(model) + " already added");
  if (c.max_batch_size < 1) invalid("maxBatchSize: must be >= 1");
  if (c.instances < 1) invalid("instances: must be >= 1");
  if (c.max_queue_size < 1) invalid("maxQueueSize: must be >= 1");
  if (c.max_queue_delay_us < 0) invalid("maxQueueDelayUs: must be >= 0");
  for (uint32_t p : c.preferred) {
    if (p < 1 || p > c.max_batch_size) invalid("preferredBatchSizes: each size must be in [1, maxBatchSize]");
  }
  std::sort(c.preferred.begin(), c.preferred.end());
  c.preferred.erase(std::unique(c.preferred.begin(), c.preferred.end()), c.preferred.end());
  if (c.preferred.empty()) c.preferred.push_back(c.max_batch_size);
  Model& m = models_[model];
  m.config = std::move(c);
  m.classes.resize(classes_);
}

std::vector<uint32_t> Scheduler::remove_model(uint32_t model) {
  Model* m = find(model);
  if (!m) return {};
  std::vector<uint32_t> ids;
  ids.reserve(m->queued);
  for (const ArrivalEntry& a : m->arrivals.entries()) {
    if (alive(a)) {
      ids.push_back(a.id);
      slots_[a.id].queued = false;
    }
  }
  models_.erase(model);
  return ids;
}

Scheduler::Model* Scheduler::find(uint32_t model) {
  auto it = models_.find(model);
  return it == models_.end() ? nullptr : &it->second;
}

bool Scheduler::alive(const Entry& e) const { return slots_[e.id].queued && slots_[e.id].seq == e.seq; }
bool Scheduler::alive(const ArrivalEntry& a) const { return slots_[a.id].queued && slots_[a.id].seq == a.seq; }

Admission Scheduler::submit(const Submission& sub) {
  if (sub.id >= kMaxId) invalid("id: out of range");
  if (sub.priority >= classes_) invalid("priority: expected an integer in [0, " + std::to_string(classes_ - 1) + "]");
  if (sub.tenant >= kMaxId) invalid("tenant: id out of range");
  Model* m = find(sub.model);
  if (!m) return Admission::kUnknownModel;
  if (sub.id < slots_.size() && slots_[sub.id].queued) invalid("id: " + std::to_string(sub.id) + " is still queued");
  if (m->queued >= m->config.max_queue_size) return Admission::kOverloaded;
  if (sub.id >= slots_.size()) slots_.resize(static_cast<size_t>(sub.id) + 1);

  Slot& s = slots_[sub.id];
  s = Slot{next_seq_++, sub.model, sub.tenant, sub.priority, sub.arrival, sub.deadline, true};
  PriorityClass& cls = m->classes[sub.priority];
  TenantQueue& q = cls.tenants[sub.tenant];
  q.tenant = sub.tenant;
  q.requests.push(Entry{s.deadline, s.seq, sub.id});
  ++q.live;
  ++cls.live;
  if (!q.active) {
    q.active = true;
    ++q.epoch;
    q.pass = std::max(q.pass, cls.vtime);
    ++cls.active;
    cls.push_turn(q);
  }
  m->arrivals.push(ArrivalEntry{s.seq, sub.id});
  if (s.deadline != kNoDeadline) m->deadlines.push(Entry{s.deadline, s.seq, sub.id});
  ++m->queued;
  return Admission::kAccepted;
}

// Takes a queued request out of every count; heap entries die lazily.
void Scheduler::drop(Model& m, Slot& s) {
  s.queued = false;
  --m.queued;
  PriorityClass& cls = m.classes[s.priority];
  --cls.live;
  TenantQueue& q = cls.tenants.find(s.tenant)->second;
  auto live_entry = [this](const Entry& e) { return alive(e); };
  if (--q.live == 0) {
    q.active = false;
    q.requests.clear();
    --cls.active;
    cls.compact_turns();
  } else {
    q.requests.compact(q.live, live_entry);
  }
  if (m.queued == 0) {
    m.arrivals.clear();
    m.deadlines.clear();
  } else {
    m.arrivals.compact(m.queued, [this](const ArrivalEntry& a) { return alive(a); });
    m.deadlines.compact(m.queued, live_entry);
  }
}

bool Scheduler::cancel(uint32_t id) {
  if (id >= slots_.size() || !slots_[id].queued) return false;
  Model* m = find(slots_[id].model);
  if (!m) return false;
  drop(*m, slots_[id]);
  return true;
}

void Scheduler::complete(uint32_t model) {
  Model* m = find(model);
  if (!m) return;
  if (m->running == 0) invalid("complete: model " + std::to_string(model) + " has no batch running");
  --m->running;
}

// Highest class first; inside it the tenant with the smallest pass; inside that tenant EDF.
uint32_t Scheduler::pick(Model& m) {
  PriorityClass* cls = nullptr;
  for (PriorityClass& c : m.classes) {
    if (c.live > 0) {
      cls = &c;
      break;
    }
  }
  TenantQueue& q = cls->take_turn();
  q.requests.prune([this](const Entry& e) { return alive(e); });
  const Entry e = q.requests.top();
  q.requests.pop();
  cls->vtime = q.pass;
  q.pass += stride(q.tenant);
  drop(m, slots_[e.id]);
  if (q.active) cls->push_turn(q);
  return e.id;
}

// Triton's dynamic batcher: the largest reachable preferred size at once, else
// whatever is queued (up to the maximum) once the oldest request waited the delay.
// With dispatch_when_idle, a model with no batch running takes the queue at once.
uint32_t Scheduler::batch_target(Model& m, Micros now) {
  const uint32_t limit = std::min(m.queued, m.config.max_batch_size);
  if (m.config.dispatch_when_idle && m.running == 0) return limit;
  uint32_t best = 0;
  for (uint32_t p : m.config.preferred) {
    if (p <= limit) best = p;
  }
  if (best > 0) return best;
  const ArrivalEntry* oldest = m.arrivals.oldest([this](const ArrivalEntry& a) { return alive(a); });
  if (oldest && add_saturating(slots_[oldest->id].arrival, m.config.max_queue_delay_us) <= now) return limit;
  return 0;
}

Micros Scheduler::next_wake(Model& m) {
  Micros wake = kNoDeadline;
  if (m.queued > 0 && m.running < m.config.instances) {
    const ArrivalEntry* oldest = m.arrivals.oldest([this](const ArrivalEntry& a) { return alive(a); });
    wake = add_saturating(slots_[oldest->id].arrival, m.config.max_queue_delay_us);
  }
  if (m.deadlines.prune([this](const Entry& e) { return alive(e); })) wake = std::min(wake, m.deadlines.top().deadline);
  return wake;
}

PollResult Scheduler::poll(Micros now, uint32_t* out, size_t capacity) {
  PollResult r;
  auto live_entry = [this](const Entry& e) { return alive(e); };
  for (auto& [id, m] : models_) {
    while (m.deadlines.prune(live_entry) && m.deadlines.top().deadline <= now) {
      if (r.words + 2 > capacity) {
        r.more = true;
        return r;
      }
      const uint32_t rid = m.deadlines.top().id;
      m.deadlines.pop();
      drop(m, slots_[rid]);
      out[r.words++] = kOpExpired;
      out[r.words++] = rid;
    }
    while (m.running < m.config.instances && m.queued > 0) {
      const uint32_t n = batch_target(m, now);
      if (n == 0) break;
      if (r.words + 3 + n > capacity) {
        if (r.words == 0)
          invalid("out: capacity " + std::to_string(capacity) + " cannot hold one batch of " + std::to_string(n));
        r.more = true;
        return r;
      }
      out[r.words++] = kOpBatch;
      out[r.words++] = id;
      out[r.words++] = n;
      for (uint32_t k = 0; k < n; ++k) out[r.words++] = pick(m);
      ++m.running;
    }
  }
  for (auto& [id, m] : models_) r.next_wake = std::min(r.next_wake, next_wake(m));
  return r;
}

size_t Scheduler::queued(uint32_t model) const {
  auto it = models_.find(model);
  return it == models_.end() ? 0 : it->second.queued;
}

uint32_t Scheduler::running(uint32_t model) const {
  auto it = models_.find(model);
  return it == models_.end() ? 0 : it->second.running;
}

}  // namespace whale::sched
