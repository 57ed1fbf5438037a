#include "gateway/connection_pool.hpp"

#include <algorithm>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace actorserve::gateway {

namespace {

// After a burst, the memory the connection threads used is free but stays in glibc's per-thread
// arenas; give it back to the system once the pool is idle again.
void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

} // namespace

connection_pool::connection_pool(size_t min_threads, size_t max_threads, std::chrono::milliseconds idle_timeout)
    : min_threads_(min_threads), max_threads_(std::max<size_t>(1, std::max(min_threads, max_threads))),
      idle_timeout_(idle_timeout) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < min_threads_; ++i)
    threads_.emplace_back([this] { worker(); });
}

connection_pool::~connection_pool() { shutdown(); }

void connection_pool::reap_exited() {
  for (std::thread::id id : exited_) {
    auto it = std::find_if(threads_.begin(), threads_.end(), [&](const std::thread& t) { return t.get_id() == id; });
    if (it != threads_.end()) {
      it->join(); // it has left worker() already: returns at once
      threads_.erase(it);
    }
  }
  exited_.clear();
}

void connection_pool::enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    reap_exited();
    jobs_.push_back(std::move(fn));
    // Every idle thread may already be claimed by an earlier job still in the queue.
    if (jobs_.size() > num_idle_ && threads_.size() < max_threads_)
      threads_.emplace_back([this] { worker(); });
  }
  wake_.notify_one();
}

void connection_pool::worker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++num_idle_;
    const bool woke = wake_.wait_for(lock, idle_timeout_, [&] { return !jobs_.empty() || shutting_down_; });
    --num_idle_;
    if (!woke && threads_.size() - exited_.size() > min_threads_) {
      exited_.push_back(std::this_thread::get_id());
      if (threads_.size() - exited_.size() == min_threads_ && num_busy_ == 0)
        release_free_memory();
      return;
    }
    if (jobs_.empty()) {
      if (shutting_down_)
        return;
      continue;
    }
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    ++num_busy_;
    lock.unlock();
    job();
    job = nullptr; // release what the job captured before taking the lock
    lock.lock();
    --num_busy_;
  }
}

void connection_pool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_ && threads_.empty())
      return;
    shutting_down_ = true;
  }
  wake_.notify_all();
  {
    std::lock_guard lock(mutex_);
    threads.swap(threads_);
    exited_.clear();
  }
  for (std::thread& t : threads)
    if (t.joinable())
      t.join();
}

size_t connection_pool::num_threads() const {
  std::lock_guard lock(mutex_);
  return threads_.size() - exited_.size();
}

size_t connection_pool::num_busy() const {
  std::lock_guard lock(mutex_);
  return num_busy_;
}

size_t connection_pool::num_queued() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

} // namespace actorserve::gateway
