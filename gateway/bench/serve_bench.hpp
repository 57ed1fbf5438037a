#pragma once
// `actorserve bench serve`: a load generator defined like vLLM's `bench serve`. It sends the
// random dataset to a running server (streaming, stream_options.include_usage), at the arrival
// times of the workload, with at most `max_concurrency` requests in flight, and measures per
// request TTFT, the gaps between streamed chunks and the end-to-end latency.

#include "gateway/bench/report.hpp"
#include "gateway/bench/workload.hpp"

#include <string>
#include <vector>

namespace actorserve::gateway::bench {

struct serve_bench_options {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions"; // or /v1/chat/completions
  std::string model;                        // empty: the server's first model
  std::string tokenizer;                    // folder with tokenizer.json; empty: the server's model root
  std::string api_key;
  random_dataset_options dataset;
  double request_rate = infinite_rate;
  double burstiness = 1.0;
  int32_t max_concurrency = 0;              // 0: no limit
  bool ignore_eos = false;
  double temperature = 0.0;
  std::vector<std::string> goodput;         // "ttft:500", ...
  std::vector<std::string> percentile_metrics = {"ttft", "tpot", "itl"};
  std::vector<double> metric_percentiles = {99};
  std::string result_file;                  // write the JSON here when not empty
  int timeout_s = 600;                      // per request
};

/// Runs the benchmark, prints the table, writes the JSON; returns the exit status (1 if every
/// request failed).
int run_serve_bench(const serve_bench_options& options);

} // namespace actorserve::gateway::bench
