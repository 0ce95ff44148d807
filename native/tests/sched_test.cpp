// Native scheduler tests: batch formation (preferred sizes, queue delay,
// instances, work-conserving dispatch when idle), strict priorities, EDF, weighted fairness, deadlines,
// cancellation, admission, model removal, and an exactly-once stress run.
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../sched/scheduler.h"
#include "check.h"

using namespace whale;
using namespace whale::sched;

namespace {

struct Decoded {
  std::vector<std::vector<uint32_t>> batches;  // ids per batch
  std::vector<uint32_t> batch_models;
  std::vector<uint32_t> expired;
  Micros next_wake = kNoDeadline;
};

Decoded poll(Scheduler& s, Micros now, size_t capacity = 4096) {
  std::vector<uint32_t> out(capacity);
  Decoded d;
  for (;;) {
    PollResult r = s.poll(now, out.data(), out.size());
    for (size_t i = 0; i < r.words;) {
      if (out[i] == kOpExpired) {
        d.expired.push_back(out[i + 1]);
        i += 2;
      } else {
        d.batch_models.push_back(out[i + 1]);
        const uint32_t n = out[i + 2];
        d.batches.emplace_back(out.begin() + i + 3, out.begin() + i + 3 + n);
        i += 3 + n;
      }
    }
    if (!r.more) {
      d.next_wake = r.next_wake;
      return d;
    }
  }
}

ModelConfig config(uint32_t max, std::vector<uint32_t> preferred, Micros delay, uint32_t queue = 1000,
                   uint32_t instances = 1, bool when_idle = false) {
  ModelConfig c;
  c.dispatch_when_idle = when_idle;
  c.max_batch_size = max;
  c.preferred = std::move(preferred);
  c.max_queue_delay_us = delay;
  c.max_queue_size = queue;
  c.instances = instances;
  return c;
}

Submission sub(uint32_t id, uint32_t model, Micros arrival, uint32_t tenant = 0, uint32_t priority = 0,
               Micros deadline = kNoDeadline) {
  return Submission{id, model, tenant, priority, arrival, deadline};
}

void test_preferred_and_delay() {
  Scheduler s(3);
  s.add_model(7, config(8, {4}, 1000));
  for (uint32_t i = 0; i < 3; ++i) s.submit(sub(i, 7, 10));
  Decoded d = poll(s, 10);
  CHECK(d.batches.empty(), "3 < preferred 4: waits");
  CHECK(d.next_wake == 1010, "wakes when the oldest waited the delay");
  s.submit(sub(3, 7, 20));
  d = poll(s, 20);
  CHECK(d.batches.size() == 1 && d.batches[0].size() == 4, "preferred size reached: dispatched at once");
  CHECK(d.batch_models.size() == 1 && d.batch_models[0] == 7, "batch names its model");
  CHECK(d.batches[0] == (std::vector<uint32_t>{0, 1, 2, 3}), "FIFO inside one tenant without deadlines");
  s.complete(7);
  s.submit(sub(4, 7, 30));
  s.submit(sub(5, 7, 40));
  CHECK(poll(s, 1029).batches.empty(), "not before the delay");
  d = poll(s, 1030);
  CHECK(d.batches.size() == 1 && d.batches[0].size() == 2, "delay passed: what is queued goes");
  CHECK(d.next_wake == kNoDeadline, "nothing pending");
}

void test_max_and_instances() {
  Scheduler s(1);
  s.add_model(1, config(4, {}, 1'000'000, 100, 2));
  for (uint32_t i = 0; i < 10; ++i) s.submit(sub(i, 1, 0));
  Decoded d = poll(s, 0);
  CHECK(d.batches.size() == 2, "two instances: two batches at once");
  CHECK(d.batches[0].size() == 4 && d.batches[1].size() == 4, "max batch size when no preferred sizes");
  CHECK(s.running(1) == 2 && s.queued(1) == 2, "counts");
  CHECK(d.next_wake == kNoDeadline, "all instances busy and no deadlines: no wake");
  s.complete(1);
  d = poll(s, 0);
  CHECK(d.batches.empty(), "2 queued < 4 and the delay has not passed");
  d = poll(s, 1'000'000);
  CHECK(d.batches.size() == 1 && d.batches[0].size() == 2, "the rest after the delay");
}

void test_dispatch_when_idle() {
  Scheduler s(1);
  s.add_model(1, config(4, {4}, 1'000'000, 100, 1, true));
  s.submit(sub(0, 1, 0));
  Decoded d = poll(s, 0);
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{0}),
        "idle model: a lone request goes at time 0");
  for (uint32_t i = 1; i <= 6; ++i) s.submit(sub(i, 1, 5));
  d = poll(s, 10);
  CHECK(d.batches.empty(), "the only instance is busy: requests queue");
  CHECK(d.next_wake == kNoDeadline, "busy and no deadlines: nothing to wake for");
  s.complete(1);
  d = poll(s, 10);
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{1, 2, 3, 4}),
        "on completion the queue goes at once, up to max");
  CHECK(s.queued(1) == 2 && s.running(1) == 1, "the rest waits for the next free instance");
  s.complete(1);
  d = poll(s, 11);
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{5, 6}),
        "idle again: the remainder goes without the delay");

  // Off (the default): the same lone request waits for the delay.
  Scheduler t(1);
  t.add_model(1, config(4, {4}, 1000));
  t.submit(sub(0, 1, 0));
  CHECK(poll(t, 0).batches.empty() && poll(t, 1000).batches.size() == 1, "Triton's rule without the option");
}

void test_dispatch_when_idle_instances() {
  Scheduler s(1);
  s.add_model(1, config(8, {4}, 1000, 100, 2, true));
  s.submit(sub(0, 1, 0));
  Decoded d = poll(s, 0);
  CHECK(d.batches.size() == 1 && d.batches[0].size() == 1, "no batch running: dispatched at once");
  s.submit(sub(1, 1, 10));
  s.submit(sub(2, 1, 10));
  d = poll(s, 10);
  CHECK(d.batches.empty(), "a batch runs: the second instance follows Triton's rule (2 < preferred 4)");
  CHECK(d.next_wake == 1010, "and wakes when the oldest waited the delay");
  s.submit(sub(3, 1, 20));
  s.submit(sub(4, 1, 20));
  d = poll(s, 20);
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{1, 2, 3, 4}),
        "preferred size reached: the second instance takes it");
  s.submit(sub(5, 1, 30));
  CHECK(poll(s, 30).batches.empty(), "both instances busy");
  s.complete(1);
  CHECK(poll(s, 31).batches.empty(), "one batch still running: Triton's rule, the delay has not passed");
  s.complete(1);
  d = poll(s, 32);
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{5}), "nothing running: the queue goes at once");
}

void test_dispatch_when_idle_deadlines() {
  Scheduler s(2);
  s.add_model(1, config(4, {}, 1'000'000, 100, 1, true));
  s.submit(sub(0, 1, 0));
  poll(s, 0);
  s.submit(sub(1, 1, 0, 0, 1, 100));
  s.submit(sub(2, 1, 0, 0, 1, 500));
  s.submit(sub(3, 1, 0, 0, 0));
  Decoded d = poll(s, 50);
  CHECK(d.batches.empty() && d.next_wake == 100, "busy: wakes for the earliest deadline only");
  d = poll(s, 100);
  CHECK(d.expired == (std::vector<uint32_t>{1}) && d.batches.empty(),
        "a deadline passing while busy expires the request");
  s.complete(1);
  d = poll(s, 600);
  CHECK(d.expired == (std::vector<uint32_t>{2}), "expiry comes before dispatch when idle");
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{3}), "only the live request runs");
}

void test_priority_and_edf() {
  Scheduler s(3);
  s.add_model(1, config(1, {}, 0));
  s.submit(sub(0, 1, 0, 0, 2));
  s.submit(sub(1, 1, 0, 0, 1, 900));
  s.submit(sub(2, 1, 0, 0, 1, 500));
  s.submit(sub(3, 1, 0, 0, 0));
  std::vector<uint32_t> order;
  for (int k = 0; k < 4; ++k) {
    Decoded d = poll(s, 1);
    CHECK(d.batches.size() == 1, "one batch per free instance");
    if (!d.batches.empty()) order.push_back(d.batches[0][0]);
    s.complete(1);
  }
  CHECK(order == (std::vector<uint32_t>{3, 2, 1, 0}), "class 0 first, then EDF in class 1, then class 2");
}

void test_fairness() {
  Scheduler s(1);
  s.set_tenant_weight(1, 1.0);
  s.set_tenant_weight(2, 3.0);
  s.add_model(1, config(1, {}, 0, 10000));
  uint32_t id = 0;
  for (int i = 0; i < 400; ++i) {
    s.submit(sub(id++, 1, 0, 1));
    s.submit(sub(id++, 1, 0, 2));
  }
  std::map<uint32_t, int> served;
  for (int k = 0; k < 200; ++k) {
    Decoded d = poll(s, 0);
    served[d.batches[0][0] % 2 == 0 ? 1 : 2]++;
    s.complete(1);
  }
  CHECK(served[1] >= 49 && served[1] <= 51 && served[2] >= 149 && served[2] <= 151, "weights 1:3 give shares 1:3");

  // A tenant that was idle cannot bank credit: it rejoins at the current virtual time.
  Scheduler t(1);
  t.add_model(1, config(1, {}, 0, 10000));
  for (uint32_t i = 0; i < 100; ++i) t.submit(sub(i, 1, 0, 1));
  for (int k = 0; k < 50; ++k) {
    poll(t, 0);
    t.complete(1);
  }
  for (uint32_t i = 100; i < 110; ++i) t.submit(sub(i, 1, 0, 2));
  int newcomer = 0;
  for (int k = 0; k < 10; ++k) {
    Decoded d = poll(t, 0);
    newcomer += d.batches[0][0] >= 100;
    t.complete(1);
  }
  CHECK(newcomer == 5, "the newcomer alternates with the busy tenant");
}

void test_deadlines_cancel_admission() {
  Scheduler s(1);
  s.add_model(1, config(4, {}, 10'000, 3));
  CHECK(s.submit(sub(0, 1, 0, 0, 0, 500)) == Admission::kAccepted, "accepted");
  CHECK(s.submit(sub(1, 1, 0)) == Admission::kAccepted, "accepted");
  CHECK(s.submit(sub(2, 1, 0)) == Admission::kAccepted, "accepted");
  CHECK(s.submit(sub(3, 1, 0)) == Admission::kOverloaded, "queue full: overloaded");
  CHECK(s.submit(sub(3, 99, 0)) == Admission::kUnknownModel, "unknown model");
  CHECK(poll(s, 0).next_wake == 500, "wakes at the earliest deadline");
  CHECK(s.cancel(1), "cancel a queued request");
  CHECK(!s.cancel(1), "twice: no longer queued");
  Decoded d = poll(s, 500);
  CHECK(d.expired == (std::vector<uint32_t>{0}), "deadline reached: expired");
  CHECK(d.batches.empty() && s.queued(1) == 1, "one left");
  d = poll(s, 10'000);
  CHECK(d.batches.size() == 1 && d.batches[0] == (std::vector<uint32_t>{2}), "only the live request runs");
  CHECK(!s.cancel(2), "a dispatched request cannot be cancelled");
  CHECK(s.submit(sub(0, 1, 5)) == Admission::kAccepted, "an id is reusable once it left the queue");
  bool threw = false;
  try {
    s.submit(sub(0, 1, 5));
  } catch (const EngineError& e) {
    threw = e.code() == kErrInvalidArg;
  }
  CHECK(threw, "a queued id cannot be reused");
  std::vector<uint32_t> gone = s.remove_model(1);
  CHECK(gone == (std::vector<uint32_t>{0}), "removal returns the queued ids");
  s.complete(1);  // a batch of a removed model finishing is not an error
  CHECK(s.submit(sub(0, 1, 6)) == Admission::kUnknownModel, "removed model is unknown");
}

void test_small_output_buffer() {
  Scheduler s(1);
  s.add_model(1, config(2, {}, 0, 100, 50));
  for (uint32_t i = 0; i < 20; ++i) s.submit(sub(i, 1, 0));
  Decoded d = poll(s, 0, 8);  // room for one batch of 2 per call
  CHECK(d.batches.size() == 10, "poll continues when the buffer was full");
  bool threw = false;
  Scheduler t(1);
  t.add_model(1, config(8, {}, 0));
  for (uint32_t i = 0; i < 8; ++i) t.submit(sub(i, 1, 0));
  std::vector<uint32_t> out(4);
  try {
    t.poll(0, out.data(), out.size());
  } catch (const EngineError&) {
    threw = true;
  }
  CHECK(threw, "a buffer that cannot hold one batch is an error, not a silent stall");
}

// Random operations: every request leaves exactly once (batch, expiry, cancel or removal).
void test_exactly_once_stress() {
  std::mt19937 rng(12345);
  Scheduler s(3);
  s.add_model(0, config(8, {2, 4}, 300, 64, 2));
  s.add_model(1, config(3, {}, 0, 16, 1));
  s.add_model(2, config(4, {4}, 500, 32, 2, true));
  std::map<uint32_t, int> outcome;  // id -> times it left the queue
  std::set<uint32_t> queued;
  std::map<uint32_t, int> running;  // model -> batches running
  uint32_t next_id = 0;
  Micros now = 0;
  for (int step = 0; step < 20000; ++step) {
    int op = rng() % 10;
    if (op < 5) {
      uint32_t id = next_id++;
      Micros dl = rng() % 3 ? now + 50 + rng() % 2000 : kNoDeadline;
      Admission a = s.submit(sub(id, rng() % 3, now, rng() % 4, rng() % 3, dl));
      if (a == Admission::kAccepted) queued.insert(id);
    } else if (op == 5 && !queued.empty()) {
      auto it = queued.begin();
      std::advance(it, rng() % queued.size());
      uint32_t id = *it;
      if (s.cancel(id)) {
        outcome[id]++;
        queued.erase(id);
      }
    } else if (op == 6) {
      for (auto& [m, n] : running) {
        if (n > 0) {
          s.complete(m);
          --n;
          break;
        }
      }
    } else {
      now += rng() % 200;
      Decoded d = poll(s, now, 64);
      for (uint32_t id : d.expired) outcome[id]++, queued.erase(id);
      for (size_t b = 0; b < d.batches.size(); ++b) {
        running[d.batch_models[b]]++;
        for (uint32_t id : d.batches[b]) outcome[id]++, queued.erase(id);
      }
    }
  }
  for (uint32_t m = 0; m < 3; ++m) {
    for (uint32_t id : s.remove_model(m)) outcome[id]++, queued.erase(id);
  }
  bool once = queued.empty();
  for (auto& [id, n] : outcome) once = once && n == 1;
  CHECK(once, "every accepted request left the queue exactly once");
  CHECK(outcome.size() > 1000, "the stress run did real work");
}

}  // namespace

int main() {
  test_preferred_and_delay();
  test_max_and_instances();
  test_dispatch_when_idle();
  test_dispatch_when_idle_instances();
  test_dispatch_when_idle_deadlines();
  test_priority_and_edf();
  test_fairness();
  test_deadlines_cancel_admission();
  test_small_output_buffer();
  test_exactly_once_stress();
  return report();
}
