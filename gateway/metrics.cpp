#include "gateway/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>

namespace actorserve::gateway {
namespace {

using prometheus::Histogram;

// Bucket bounds (seconds) in the ranges vLLM's dashboards expect: sub-millisecond to minutes for
// first-token latency, 10 ms to a minute between tokens, 0.3 s to hours end to end.
const Histogram::BucketBoundaries ttft_buckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,   0.75,
                                                  1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const Histogram::BucketBoundaries itl_buckets = {0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3,  0.4, 0.5,
                                                 0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const Histogram::BucketBoundaries request_buckets = {0.3,  0.5,  0.8,  1.0,   1.5,   2.0,   2.5,    5.0,   10.0, 15.0,
                                                     20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

void advance(prometheus::Counter& c, int64_t now, int64_t before) {
  if (now > before)
    c.Increment(double(now - before));
}

} // namespace

struct server_metrics::families {
  prometheus::Gauge* running;
  prometheus::Gauge* waiting;
  prometheus::Gauge* kv_usage;
  prometheus::Counter* prefix_queries;
  prometheus::Counter* prefix_hits;
  prometheus::Counter* preemptions;
  prometheus::Counter* prompt_tokens;
  prometheus::Counter* generation_tokens;
  prometheus::Histogram* ttft;
  prometheus::Histogram* itl;
  prometheus::Histogram* e2e;
  prometheus::Histogram* queue_time;
  prometheus::Family<prometheus::Counter>* success;
  prometheus::Family<prometheus::Counter>* http;
};

server_metrics::server_metrics(std::string model_name)
    : model_name_(std::move(model_name)), registry_(std::make_shared<prometheus::Registry>()),
      f_(std::make_unique<families>()) {
  const prometheus::Labels model = {{"model_name", model_name_}};
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(model);
  };
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(model);
  };
  auto histogram = [&](const char* name, const char* help, const Histogram::BucketBoundaries& buckets) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_).Add(model, buckets);
  };
  f_->running = gauge("actorserve:num_requests_running", "Number of sequences in the running set (on the GPU or CPU).");
  f_->waiting = gauge("actorserve:num_requests_waiting", "Number of requests waiting to be scheduled.");
  f_->kv_usage = gauge("actorserve:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.");
  f_->prefix_queries = counter("actorserve:prefix_cache_queries_total",
                               "Prefix cache queries, in terms of number of queried prompt tokens.");
  f_->prefix_hits = counter("actorserve:prefix_cache_hits_total",
                            "Prefix cache hits, in terms of number of cached prompt tokens.");
  f_->preemptions = counter("actorserve:num_preemptions_total", "Cumulative number of preemptions by the scheduler.");
  f_->prompt_tokens = counter("actorserve:prompt_tokens_total", "Number of prefill tokens processed.");
  f_->generation_tokens = counter("actorserve:generation_tokens_total", "Number of generation tokens processed.");
  f_->ttft = histogram("actorserve:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                       ttft_buckets);
  f_->itl = histogram("actorserve:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                      itl_buckets);
  f_->e2e = histogram("actorserve:e2e_request_latency_seconds",
                      "Histogram of end to end request latency in seconds.", request_buckets);
  f_->queue_time = histogram("actorserve:request_queue_time_seconds",
                             "Histogram of time spent in the WAITING phase for a request.", request_buckets);
  f_->success = &prometheus::BuildCounter()
                     .Name("actorserve:request_success_total")
                     .Help("Count of finished requests, by finish reason (abort: cancelled or failed).")
                     .Register(*registry_);
  f_->http = &prometheus::BuildCounter()
                  .Name("actorserve:http_requests_total")
                  .Help("HTTP responses, by method, endpoint and status code.")
                  .Register(*registry_);
  for (const char* reason : {"stop", "length", "abort"})
    f_->success->Add({{"model_name", model_name_}, {"finished_reason", reason}});
}

server_metrics::~server_metrics() = default;

void server_metrics::observe_request(const request_metrics& m, const std::string& finished_reason) {
  f_->success->Add({{"model_name", model_name_}, {"finished_reason", finished_reason}}).Increment();
  f_->e2e->Observe(m.e2e_s);
  f_->queue_time->Observe(m.queue_time_s);
  if (m.ttft_s > 0)
    f_->ttft->Observe(m.ttft_s);
  for (double gap : m.inter_token_s)
    f_->itl->Observe(gap);
}

void server_metrics::count_http(const std::string& method, const std::string& endpoint, int status) {
  f_->http->Add({{"method", method}, {"endpoint", endpoint}, {"status", std::to_string(status)}}).Increment();
}

void server_metrics::update(const engine_stats& s) {
  std::lock_guard lock(update_mutex_);
  f_->running->Set(s.num_running);
  f_->waiting->Set(s.num_waiting);
  f_->kv_usage->Set(std::clamp(s.kv_usage, 0.0, 1.0));
  advance(*f_->prefix_queries, s.prefix_cache_queries, last_.prefix_cache_queries);
  advance(*f_->prefix_hits, s.prefix_cache_hits, last_.prefix_cache_hits);
  advance(*f_->preemptions, s.num_preemptions, last_.num_preemptions);
  advance(*f_->prompt_tokens, s.prompt_tokens, last_.prompt_tokens);
  advance(*f_->generation_tokens, s.generation_tokens, last_.generation_tokens);
  last_ = s;
}

std::string server_metrics::serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

} // namespace actorserve::gateway
