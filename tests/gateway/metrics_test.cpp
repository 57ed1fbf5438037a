// /metrics text: vLLM's metric names under actorserve:, labelled with model_name.
#include "gateway/metrics.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <string>

using namespace actorserve;
using namespace actorserve::gateway;

namespace {
// The value of the sample line starting with `series` (name plus labels), or NaN.
double sample(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      size_t end = text.find('\n', pos);
      std::string line = text.substr(pos, end - pos);
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos += series.size();
  }
  return std::nan("");
}
} // namespace

TEST_CASE("metrics: engine snapshot becomes gauges and monotonic counters", "[gateway][metrics]") {
  server_metrics m("tiny");
  engine_stats s;
  s.num_running = 3;
  s.num_waiting = 2;
  s.kv_usage = 0.25;
  s.prompt_tokens = 100;
  s.generation_tokens = 40;
  s.prefix_cache_queries = 64;
  s.prefix_cache_hits = 16;
  s.num_preemptions = 1;
  m.update(s);
  s.generation_tokens = 55;
  s.num_running = 0;
  m.update(s);
  const std::string text = m.serialize();
  CHECK(sample(text, "actorserve:num_requests_running{model_name=\"tiny\"}") == 0);
  CHECK(sample(text, "actorserve:num_requests_waiting{model_name=\"tiny\"}") == 2);
  CHECK(sample(text, "actorserve:kv_cache_usage_perc{model_name=\"tiny\"}") == 0.25);
  CHECK(sample(text, "actorserve:prompt_tokens_total{model_name=\"tiny\"}") == 100);
  CHECK(sample(text, "actorserve:generation_tokens_total{model_name=\"tiny\"}") == 55);
  CHECK(sample(text, "actorserve:prefix_cache_queries_total{model_name=\"tiny\"}") == 64);
  CHECK(sample(text, "actorserve:prefix_cache_hits_total{model_name=\"tiny\"}") == 16);
  CHECK(sample(text, "actorserve:num_preemptions_total{model_name=\"tiny\"}") == 1);
  CHECK(text.find("# TYPE actorserve:num_requests_running gauge") != std::string::npos);
  CHECK(text.find("# TYPE actorserve:generation_tokens_total counter") != std::string::npos);
}

TEST_CASE("metrics: request latencies land in histograms, finishes and HTTP statuses are counted",
          "[gateway][metrics]") {
  server_metrics m("tiny");
  request_metrics r;
  r.queue_time_s = 0.01;
  r.ttft_s = 0.05;
  r.e2e_s = 0.4;
  r.inter_token_s = {0.02, 0.03, 0.04};
  m.observe_request(r, "length");
  m.observe_request(r, "abort");
  m.count_http("POST", "/v1/completions", 200);
  m.count_http("POST", "/v1/completions", 400);
  m.count_http("POST", "/v1/completions", 400);
  const std::string text = m.serialize();
  CHECK(sample(text, "actorserve:time_to_first_token_seconds_count{model_name=\"tiny\"}") == 2);
  CHECK(sample(text, "actorserve:time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.06\"}") == 2);
  CHECK(sample(text, "actorserve:time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.04\"}") == 0);
  CHECK(sample(text, "actorserve:inter_token_latency_seconds_count{model_name=\"tiny\"}") == 6);
  CHECK(sample(text, "actorserve:e2e_request_latency_seconds_sum{model_name=\"tiny\"}") == Approx(0.8));
  CHECK(sample(text, "actorserve:request_queue_time_seconds_count{model_name=\"tiny\"}") == 2);
  CHECK(sample(text, "actorserve:request_success_total{finished_reason=\"abort\",model_name=\"tiny\"}") == 1);
  CHECK(sample(text, "actorserve:request_success_total{finished_reason=\"stop\",model_name=\"tiny\"}") == 0);
  CHECK(sample(text, "actorserve:http_requests_total{endpoint=\"/v1/completions\",method=\"POST\",status=\"400\"}") == 2);
}
