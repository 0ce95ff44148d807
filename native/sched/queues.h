// The scheduler's queue building blocks. Removal is lazy: heaps keep entries of
// requests that were cancelled or expired and skip them when they reach the top
// (an entry is alive while its request slot is queued with the same sequence
// number). Heaps are compacted when dead entries outnumber live ones.
#pragma once
#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <unordered_map>
#include <vector>

namespace whale::sched {

using Micros = int64_t;
inline constexpr Micros kNoDeadline = std::numeric_limits<Micros>::max();

// One request's state, indexed by its id.
struct Slot {
  uint64_t seq = 0;
  uint32_t model = 0;
  uint32_t tenant = 0;
  uint32_t priority = 0;
  Micros arrival = 0;
  Micros deadline = kNoDeadline;
  bool queued = false;
};

// Ordered by (deadline, seq): earliest deadline first, then submission order.
struct Entry {
  Micros deadline;
  uint64_t seq;
  uint32_t id;
};

struct EntryLater {
  bool operator()(const Entry& a, const Entry& b) const {
    return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
  }
};

class EntryHeap {
 public:
  void push(const Entry& e) {
    v_.push_back(e);
    std::push_heap(v_.begin(), v_.end(), EntryLater{});
  }
  const Entry& top() const { return v_.front(); }
  void pop() {
    std::pop_heap(v_.begin(), v_.end(), EntryLater{});
    v_.pop_back();
  }
  bool empty() const { return v_.empty(); }
  size_t size() const { return v_.size(); }
  void clear() { v_.clear(); }
  // Drops dead entries at the top; returns false when nothing alive is left.
  template <typename Alive>
  bool prune(Alive alive) {
    while (!v_.empty() && !alive(v_.front())) pop();
    return !v_.empty();
  }
  template <typename Alive>
  void compact(size_t live, Alive alive) {
    if (v_.size() <= 2 * live + 64) return;
    v_.erase(std::remove_if(v_.begin(), v_.end(), [&](const Entry& e) { return !alive(e); }), v_.end());
    std::make_heap(v_.begin(), v_.end(), EntryLater{});
  }

 private:
  std::vector<Entry> v_;
};

struct ArrivalEntry {
  uint64_t seq;
  uint32_t id;
};

// Submission order, for "the oldest queued request" of a model.
class Arrivals {
 public:
  void push(const ArrivalEntry& a) { q_.push_back(a); }
  template <typename Alive>
  const ArrivalEntry* oldest(Alive alive) {
    while (!q_.empty() && !alive(q_.front())) q_.pop_front();
    return q_.empty() ? nullptr : &q_.front();
  }
  template <typename Alive>
  void compact(size_t live, Alive alive) {
    if (q_.size() <= 2 * live + 64) return;
    q_.erase(std::remove_if(q_.begin(), q_.end(), [&](const ArrivalEntry& a) { return !alive(a); }), q_.end());
  }
  const std::deque<ArrivalEntry>& entries() const { return q_; }
  void clear() { q_.clear(); }

 private:
  std::deque<ArrivalEntry> q_;
};

// One tenant's requests inside one priority class of one model.
struct TenantQueue {
  uint32_t tenant = 0;
  EntryHeap requests;  // EDF
  uint32_t live = 0;
  double pass = 0;  // stride scheduling: advanced by 1/weight per request served
  bool active = false;
  uint32_t epoch = 0;  // bumped on each activation: older turn entries are stale
};

// A tenant's place in the fairness order: smallest (pass, tenant) is served next.
struct Turn {
  double pass;
  uint32_t tenant;
  uint32_t epoch;
};

struct TurnLater {
  bool operator()(const Turn& a, const Turn& b) const {
    return a.pass != b.pass ? a.pass > b.pass : a.tenant > b.tenant;
  }
};

struct PriorityClass {
  std::unordered_map<uint32_t, TenantQueue> tenants;
  std::vector<Turn> turns;  // min-heap by TurnLater; stale entries skipped lazily
  uint32_t active = 0;
  uint32_t live = 0;
  double vtime = 0;  // pass of the request served last: where a returning tenant starts

  bool turn_valid(const Turn& t) const {
    auto it = tenants.find(t.tenant);
    return it != tenants.end() && it->second.active && it->second.epoch == t.epoch;
  }
  void push_turn(const TenantQueue& q) {
    turns.push_back(Turn{q.pass, q.tenant, q.epoch});
    std::push_heap(turns.begin(), turns.end(), TurnLater{});
  }
  // The tenant served next (pops its turn); requires live > 0.
  TenantQueue& take_turn() {
    for (;;) {
      std::pop_heap(turns.begin(), turns.end(), TurnLater{});
      Turn t = turns.back();
      turns.pop_back();
      if (turn_valid(t)) return tenants.find(t.tenant)->second;
    }
  }
  void compact_turns() {
    if (turns.size() <= 2 * static_cast<size_t>(active) + 64) return;
    turns.erase(std::remove_if(turns.begin(), turns.end(), [&](const Turn& t) { return !turn_valid(t); }), turns.end());
    std::make_heap(turns.begin(), turns.end(), TurnLater{});
  }
};

}  // namespace whale::sched
