// A fixed pool of worker threads with a blocking parallel_for. The calling
// thread takes part in its own job, and several callers (e.g. concurrent
// AsyncWorkers) may submit jobs at once: their tasks share one queue.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace whale {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Number of threads that run work, the caller included.
  size_t concurrency() const noexcept { return workers_.size() + 1; }

  // Splits [0, count) into tasks of about `grain` items (at most a few per
  // thread) and runs fn(begin, end) on each; returns when all have finished.
  // The first exception thrown by a task is rethrown here.
  void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn);

  // The process-wide pool, sized to the machine (WHALE_THREADS overrides).
  static ThreadPool& shared();

 private:
  struct Task {
    std::function<void()> run;
  };
  void worker_loop();
  bool run_one_locked(std::unique_lock<std::mutex>& lock);

  std::vector<std::thread> workers_;
  std::deque<Task> queue_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  bool stopping_ = false;
};

}  // namespace whale
