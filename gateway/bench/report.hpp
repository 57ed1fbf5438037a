#pragma once
// Results of a serving benchmark with vLLM's definitions: TTFT (request sent -> first token),
// TPOT ((E2EL - TTFT) / (output tokens - 1), per request), ITL (gaps between streamed chunks),
// E2EL (request sent -> last byte), throughputs over the benchmark's wall time, and goodput
// (requests per second meeting every given SLO).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace actorserve::gateway::bench {

struct request_record {
  bool success = false;
  std::string error;
  int32_t prompt_len = 0;
  int32_t output_len = 0;          // generated tokens (the server's usage)
  double ttft_s = 0;
  double e2el_s = 0;
  std::vector<double> itl_s;       // gaps between token-carrying chunks
};

struct slo {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
};
/// Parses vLLM's --goodput arguments: "ttft:500", "tpot:50", "e2el:2000" (milliseconds).
slo parse_goodput(const std::vector<std::string>& items);

struct latency_stats {
  double mean_ms = 0, median_ms = 0, std_ms = 0;
  std::vector<std::pair<double, double>> percentiles_ms; // (percentile, value)
};

struct bench_summary {
  int64_t completed = 0;
  int64_t failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;     // completed requests / s
  double request_goodput = 0;        // requests meeting the SLOs / s (0 without SLOs)
  bool has_goodput = false;
  double output_throughput = 0;      // generated tokens / s
  double total_token_throughput = 0; // (input + generated) tokens / s
  latency_stats ttft, tpot, itl, e2el;
};

/// numpy's default (linear) percentile of `values` (sorted or not); 0 for none.
double percentile(std::vector<double> values, double p);

bench_summary summarize(const std::vector<request_record>& records, double duration_s, const slo& goodput,
                        const std::vector<double>& percentiles);

/// The table `bench serve` prints (vLLM's layout). `metrics` picks the latency sections:
/// any of "ttft", "tpot", "itl", "e2el".
std::string format_table(const bench_summary& s, const std::vector<std::string>& metrics);

/// vLLM's result JSON keys (completed, request_throughput, mean_ttft_ms, p99_itl_ms, ...).
nlohmann::json summary_json(const bench_summary& s);

} // namespace actorserve::gateway::bench
