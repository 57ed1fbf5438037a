#pragma once
// A small fixed pool of worker threads for the CPU backend's kernels. One `parallel_for` at a
// time (the backend runs one step at a time); the calling thread takes part in the work, so a
// pool of size 1 runs everything inline.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace actorserve {

class thread_pool {
public:
  /// `num_threads` counts the calling thread: 0 means std::thread::hardware_concurrency().
  explicit thread_pool(int32_t num_threads = 0);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int32_t size() const { return int32_t(workers_.size()) + 1; }

  /// Calls fn(begin, end) over [0, n) in chunks of `grain` items, handed out dynamically so
  /// that uneven items (causal attention rows) balance. Returns when every chunk is done;
  /// the first exception thrown by `fn` is rethrown here.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  // Guarded by mutex_. A worker joins the current job only while it is open; the caller closes
  // it once every chunk is claimed and then waits for the joined workers alone, so a worker
  // the OS has not scheduled yet (2 busy cores) never delays a step.
  uint64_t generation_ = 0; // bumped for each parallel_for
  bool job_open_ = false;
  int32_t joined_workers_ = 0;
  bool stopping_ = false;

  // The current job (written before generation_ is bumped, under mutex_).
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  std::atomic<int64_t> next_chunk_{0};
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

} // namespace actorserve
