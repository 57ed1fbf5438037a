#pragma once
// The hand-off between the engine's actor threads and one HTTP connection thread: engine sinks
// push events (quick, never blocking on the client), the connection thread waits for its own
// request's events only. One channel per HTTP request; a completions request with several
// prompts feeds one channel from several engine requests, each event tagged with its prompt.

#include "actors/engine.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

namespace actorserve::gateway {

struct tagged_output {
  size_t prompt = 0;
  request_output output;
};

class request_channel : public std::enable_shared_from_this<request_channel> {
public:
  /// A sink for prompt `prompt`'s engine request. It keeps the channel alive, so events that
  /// arrive after the HTTP side gave up are dropped safely.
  output_sink sink(size_t prompt);
  /// The next event, or nullopt after `timeout` (so the caller can check its connection).
  std::optional<tagged_output> pop(std::chrono::milliseconds timeout);
  /// Stops accepting events (the client went away).
  void close();

private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<tagged_output> events_;
  bool closed_ = false;
};

} // namespace actorserve::gateway
