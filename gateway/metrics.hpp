#pragma once
// Prometheus metrics with vLLM's names and meanings under the `actorserve:` prefix, labelled
// with model_name, plus HTTP request counts. Served by our own HTTP server at /metrics in the
// text exposition format (prometheus::TextSerializer), not by a second listener.
//
// Two sources: engine gauges and totals come from `engine_stats` snapshots (copied in at each
// scrape: counters advance by the difference since the previous snapshot), and per-request
// latencies are observed by the gateway from each request's final event.

#include "actors/engine.hpp"

#include <memory>
#include <mutex>
#include <string>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T> class Family;
} // namespace prometheus

namespace actorserve::gateway {

class server_metrics {
public:
  explicit server_metrics(std::string model_name);
  ~server_metrics();
  server_metrics(const server_metrics&) = delete;
  server_metrics& operator=(const server_metrics&) = delete;

  /// A request's final event: latency histograms and request_success_total{finished_reason}.
  /// `finished_reason` is "stop", "length" or "abort" (the last choice's reason).
  void observe_request(const request_metrics& m, const std::string& finished_reason);
  /// One HTTP response (every endpoint, every status).
  void count_http(const std::string& method, const std::string& endpoint, int status);
  /// Copies an engine snapshot into the gauges and advances the counters.
  void update(const engine_stats& stats);
  /// The registry in the text exposition format (version 0.0.4).
  std::string serialize() const;

private:
  struct families;
  std::string model_name_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<families> f_;
  std::mutex update_mutex_; // serializes update(): the counter deltas need the previous totals
  engine_stats last_{};
};

} // namespace actorserve::gateway
