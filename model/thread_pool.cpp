#include "model/thread_pool.hpp"

#include <algorithm>

namespace actorserve {

thread_pool::thread_pool(int32_t num_threads) {
  if (num_threads <= 0)
    num_threads = int32_t(std::max(1u, std::thread::hardware_concurrency()));
  for (int32_t i = 1; i < num_threads; ++i)
    workers_.emplace_back([this] { worker_loop(); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_)
    t.join();
}

void thread_pool::run_chunks() {
  for (;;) {
    int64_t begin = next_chunk_.fetch_add(job_grain_, std::memory_order_relaxed);
    if (begin >= job_n_)
      return;
    int64_t end = std::min(job_n_, begin + job_grain_);
    try {
      (*job_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_)
        error_ = std::current_exception();
      // Skip the remaining chunks: the step is failing anyway.
      next_chunk_.store(job_n_, std::memory_order_relaxed);
      return;
    }
  }
}

void thread_pool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_)
        return;
      seen = generation_;
      if (!job_open_)
        continue; // the caller already did all of it
      ++joined_workers_;
    }
    run_chunks();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --joined_workers_;
    }
    done_cv_.notify_one();
  }
}

void thread_pool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(1, grain);
  // Not worth waking anyone for a single chunk.
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_grain_ = grain;
    next_chunk_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    job_open_ = true;
    ++generation_;
  }
  wake_.notify_all();
  run_chunks();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    job_open_ = false;
    done_cv_.wait(lock, [&] { return joined_workers_ == 0; });
    job_ = nullptr;
  }
  if (error_)
    std::rethrow_exception(error_);
}

} // namespace actorserve
