#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <memory>

namespace whale {

ThreadPool::ThreadPool(size_t threads) {
  size_t extra = threads > 1 ? threads - 1 : 0;
  workers_.reserve(extra);
  for (size_t i = 0; i < extra; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::run_one_locked(std::unique_lock<std::mutex>& lock) {
  if (queue_.empty()) return false;
  Task task = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  task.run();
  lock.lock();
  return true;
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_ && queue_.empty()) return;
    run_one_locked(lock);
  }
}

namespace {
struct JobState {
  std::atomic<size_t> remaining{0};
  std::mutex error_mutex;
  std::exception_ptr error;
};
}  // namespace

void ThreadPool::parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (count == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t max_tasks = concurrency() * 4;
  size_t tasks = std::min((count + grain - 1) / grain, max_tasks);
  if (tasks <= 1 || workers_.empty()) {
    fn(0, count);
    return;
  }
  const size_t step = (count + tasks - 1) / tasks;
  tasks = (count + step - 1) / step;

  auto state = std::make_shared<JobState>();
  state->remaining = tasks;
  auto run_range = [state, &fn, this](size_t b, size_t e) {
    try {
      fn(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> g(state->error_mutex);
      if (!state->error) state->error = std::current_exception();
    }
    if (state->remaining.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> g(mutex_);
      done_cv_.notify_all();
    }
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t t = 1; t < tasks; ++t) {
      size_t b = t * step, e = std::min(count, b + step);
      queue_.push_back(Task{[run_range, b, e] { run_range(b, e); }});
    }
  }
  work_cv_.notify_all();
  run_range(0, std::min(count, step));

  // Help with queued work (ours or another caller's) until our job is done.
  std::unique_lock<std::mutex> lock(mutex_);
  while (state->remaining.load() != 0) {
    if (!run_one_locked(lock)) {
      done_cv_.wait(lock, [&] { return state->remaining.load() == 0 || !queue_.empty(); });
    }
  }
  lock.unlock();
  if (state->error) std::rethrow_exception(state->error);
}

ThreadPool& ThreadPool::shared() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("WHALE_THREADS")) {
      long n = std::strtol(env, nullptr, 10);
      if (n > 0 && n <= 1024) return static_cast<size_t>(n);
    }
    unsigned hc = std::thread::hardware_concurrency();
    return static_cast<size_t>(hc == 0 ? 1 : hc);
  }());
  return pool;
}

}  // namespace whale
