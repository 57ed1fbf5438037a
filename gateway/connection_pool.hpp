#pragma once
// The thread pool cpp-httplib runs connections on (Server::new_task_queue). httplib serves a
// connection on one thread for its whole life, and a streaming response holds that thread
// until its last token, so a fixed pool of max(8, cores - 1) threads would queue the 9th
// stream behind the first 8. This pool grows on demand up to `max_threads` (sized by the
// server for the streams it admits) and lets threads above `min_threads` exit after being idle
// for `idle_timeout`, so memory goes back down after a burst.

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace actorserve::gateway {

class connection_pool : public httplib::TaskQueue {
public:
  connection_pool(size_t min_threads, size_t max_threads, std::chrono::milliseconds idle_timeout);
  ~connection_pool() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override; // runs the queued jobs, then joins every thread

  size_t num_threads() const;
  size_t num_busy() const;
  size_t num_queued() const;

private:
  void worker();
  void reap_exited(); // joins threads that left on idle timeout; mutex_ held

  const size_t min_threads_, max_threads_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> exited_;
  size_t num_idle_ = 0;
  size_t num_busy_ = 0;
  bool shutting_down_ = false;
};

} // namespace actorserve::gateway
