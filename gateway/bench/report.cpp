#include "gateway/bench/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

namespace actorserve::gateway::bench {
namespace {

latency_stats stats_ms(const std::vector<double>& seconds, const std::vector<double>& percentiles) {
  latency_stats s;
  if (seconds.empty()) {
    for (double p : percentiles)
      s.percentiles_ms.emplace_back(p, 0.0);
    return s;
  }
  std::vector<double> ms(seconds.size());
  std::transform(seconds.begin(), seconds.end(), ms.begin(), [](double v) { return v * 1000.0; });
  s.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
  double var = 0;
  for (double v : ms)
    var += (v - s.mean_ms) * (v - s.mean_ms);
  s.std_ms = std::sqrt(var / double(ms.size()));
  s.median_ms = percentile(ms, 50);
  for (double p : percentiles)
    s.percentiles_ms.emplace_back(p, percentile(ms, p));
  return s;
}

std::string percentile_name(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", p);
  return buf;
}

void line(std::string& out, const std::string& label, double value, int decimals = 2) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%-40s%-10.*f\n", label.c_str(), decimals, value);
  out += buf;
}

void count_line(std::string& out, const std::string& label, int64_t value) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%-40s%-10lld\n", label.c_str(), static_cast<long long>(value));
  out += buf;
}

void section(std::string& out, const std::string& title) {
  const size_t width = 50;
  const size_t pad = title.size() + 2 < width ? width - title.size() : 0;
  out += std::string(pad / 2, '-') + title + std::string(pad - pad / 2, '-') + "\n";
}

} // namespace

slo parse_goodput(const std::vector<std::string>& items) {
  slo s;
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos)
      throw std::invalid_argument("--goodput takes name:milliseconds (ttft, tpot, e2el), not '" + item + "'");
    const std::string name = item.substr(0, colon);
    double ms = 0;
    try {
      ms = std::stod(item.substr(colon + 1));
    } catch (const std::exception&) {
      throw std::invalid_argument("--goodput " + item + ": not a number of milliseconds");
    }
    if (ms <= 0)
      throw std::invalid_argument("--goodput " + item + ": the SLO must be positive");
    if (name == "ttft") s.ttft_ms = ms;
    else if (name == "tpot") s.tpot_ms = ms;
    else if (name == "e2el") s.e2el_ms = ms;
    else throw std::invalid_argument("--goodput: unknown metric '" + name + "' (ttft, tpot, e2el)");
  }
  return s;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0.0;
  std::sort(v.begin(), v.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * double(v.size() - 1);
  const size_t lo = size_t(std::floor(rank));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - double(lo));
}

bench_summary summarize(const std::vector<request_record>& records, double duration_s, const slo& goodput,
                        const std::vector<double>& percentiles) {
  bench_summary s;
  s.duration_s = duration_s;
  std::vector<double> ttft, tpot, itl, e2el;
  int64_t good = 0;
  for (const request_record& r : records) {
    if (!r.success) {
      ++s.failed;
      continue;
    }
    ++s.completed;
    s.total_input_tokens += r.prompt_len;
    s.total_output_tokens += r.output_len;
    ttft.push_back(r.ttft_s);
    e2el.push_back(r.e2el_s);
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    const double request_tpot = r.output_len > 1 ? (r.e2el_s - r.ttft_s) / double(r.output_len - 1) : 0.0;
    if (r.output_len > 1)
      tpot.push_back(request_tpot);
    const bool meets = (!goodput.ttft_ms || r.ttft_s * 1000 <= *goodput.ttft_ms) &&
                       (!goodput.tpot_ms || request_tpot * 1000 <= *goodput.tpot_ms) &&
                       (!goodput.e2el_ms || r.e2el_s * 1000 <= *goodput.e2el_ms);
    good += meets ? 1 : 0;
  }
  const double d = duration_s > 0 ? duration_s : 1.0;
  s.request_throughput = double(s.completed) / d;
  s.has_goodput = goodput.ttft_ms || goodput.tpot_ms || goodput.e2el_ms;
  s.request_goodput = s.has_goodput ? double(good) / d : 0.0;
  s.output_throughput = double(s.total_output_tokens) / d;
  s.total_token_throughput = double(s.total_input_tokens + s.total_output_tokens) / d;
  s.ttft = stats_ms(ttft, percentiles);
  s.tpot = stats_ms(tpot, percentiles);
  s.itl = stats_ms(itl, percentiles);
  s.e2el = stats_ms(e2el, percentiles);
  return s;
}

std::string format_table(const bench_summary& s, const std::vector<std::string>& metrics) {
  std::string out;
  out += "============ Serving Benchmark Result ============\n";
  count_line(out, "Successful requests:", s.completed);
  count_line(out, "Failed requests:", s.failed);
  line(out, "Benchmark duration (s):", s.duration_s);
  count_line(out, "Total input tokens:", s.total_input_tokens);
  count_line(out, "Total generated tokens:", s.total_output_tokens);
  line(out, "Request throughput (req/s):", s.request_throughput);
  if (s.has_goodput)
    line(out, "Request goodput (req/s):", s.request_goodput);
  line(out, "Output token throughput (tok/s):", s.output_throughput);
  line(out, "Total Token throughput (tok/s):", s.total_token_throughput);
  struct named {
    const char* key;
    const char* title;
    const char* abbrev;
    const latency_stats* stats;
  };
  const named sections[] = {{"ttft", "Time to First Token", "TTFT", &s.ttft},
                            {"tpot", "Time per Output Token (excl. 1st token)", "TPOT", &s.tpot},
                            {"itl", "Inter-token Latency", "ITL", &s.itl},
                            {"e2el", "End-to-end Latency", "E2EL", &s.e2el}};
  for (const named& n : sections) {
    if (std::find(metrics.begin(), metrics.end(), n.key) == metrics.end())
      continue;
    section(out, n.title);
    line(out, std::string("Mean ") + n.abbrev + " (ms):", n.stats->mean_ms);
    line(out, std::string("Median ") + n.abbrev + " (ms):", n.stats->median_ms);
    for (const auto& [p, v] : n.stats->percentiles_ms)
      line(out, "P" + percentile_name(p) + " " + n.abbrev + " (ms):", v);
  }
  out += std::string(50, '=') + "\n";
  return out;
}

nlohmann::json summary_json(const bench_summary& s) {
  nlohmann::json j = {{"completed", s.completed},
                      {"failed", s.failed},
                      {"duration", s.duration_s},
                      {"total_input_tokens", s.total_input_tokens},
                      {"total_output_tokens", s.total_output_tokens},
                      {"request_throughput", s.request_throughput},
                      {"request_goodput", s.has_goodput ? nlohmann::json(s.request_goodput) : nlohmann::json(nullptr)},
                      {"output_throughput", s.output_throughput},
                      {"total_token_throughput", s.total_token_throughput}};
  auto add = [&](const char* key, const latency_stats& st) {
    const std::string k = key;
    j["mean_" + k + "_ms"] = st.mean_ms;
    j["median_" + k + "_ms"] = st.median_ms;
    j["std_" + k + "_ms"] = st.std_ms;
    for (const auto& [p, v] : st.percentiles_ms)
      j["p" + percentile_name(p) + "_" + k + "_ms"] = v;
  };
  add("ttft", s.ttft);
  add("tpot", s.tpot);
  add("itl", s.itl);
  add("e2el", s.e2el);
  return j;
}

} // namespace actorserve::gateway::bench
