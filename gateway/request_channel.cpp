#include "gateway/request_channel.hpp"

namespace actorserve::gateway {

output_sink request_channel::sink(size_t prompt) {
  return [self = shared_from_this(), prompt](request_output&& out) {
    {
      std::lock_guard lock(self->mutex_);
      if (self->closed_)
        return;
      self->events_.push_back({prompt, std::move(out)});
    }
    self->ready_.notify_one();
  };
}

std::optional<tagged_output> request_channel::pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !events_.empty(); }))
    return std::nullopt;
  tagged_output out = std::move(events_.front());
  events_.pop_front();
  return out;
}

void request_channel::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  events_.clear();
}

} // namespace actorserve::gateway
