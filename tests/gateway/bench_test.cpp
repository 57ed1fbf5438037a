// The bench's workload (random dataset, arrivals) and its statistics (vLLM's definitions).
#include "gateway/bench/report.hpp"
#include "gateway/bench/workload.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

using namespace actorserve::gateway::bench;

TEST_CASE("random dataset: lengths within the range ratio, ids in the pool, same seed same data", "[gateway][bench]") {
  random_dataset_options o;
  o.num_prompts = 200;
  o.input_len = 100;
  o.output_len = 20;
  o.range_ratio = 0.5;
  o.vocab_size = 50;
  o.first_token_id = 3;
  o.excluded_ids = {10};
  o.prefix_len = 4;
  o.seed = 42;
  auto a = make_random_dataset(o);
  REQUIRE(a.size() == 200);
  int32_t min_in = 1 << 30, max_in = 0;
  for (const auto& r : a) {
    const int32_t own = int32_t(r.prompt_token_ids.size()) - 4;
    min_in = std::min(min_in, own);
    max_in = std::max(max_in, own);
    CHECK(own >= 50);
    CHECK(own <= 150);
    CHECK(r.output_len >= 10);
    CHECK(r.output_len <= 30);
    for (int32_t id : r.prompt_token_ids) {
      CHECK(id >= 3);
      CHECK(id < 50);
      CHECK(id != 10);
    }
    CHECK(std::equal(a[0].prompt_token_ids.begin(), a[0].prompt_token_ids.begin() + 4, r.prompt_token_ids.begin()));
  }
  CHECK(max_in - min_in > 50); // the range is actually used
  auto b = make_random_dataset(o);
  CHECK(b[17].prompt_token_ids == a[17].prompt_token_ids);
  o.seed = 43;
  CHECK(make_random_dataset(o)[17].prompt_token_ids != a[17].prompt_token_ids);
  o.range_ratio = 0;
  for (const auto& r : make_random_dataset(o))
    CHECK(r.prompt_token_ids.size() == 104);
  o.range_ratio = 1.0;
  CHECK_THROWS_AS(make_random_dataset(o), std::invalid_argument);
}

TEST_CASE("arrivals: all at once for inf, Poisson mean gap 1/rate", "[gateway][bench]") {
  auto inf = arrival_times(10, infinite_rate, 1.0, 0);
  CHECK(std::all_of(inf.begin(), inf.end(), [](double t) { return t == 0; }));
  auto t = arrival_times(20000, 50.0, 1.0, 7);
  CHECK(t.front() == 0);
  CHECK(std::is_sorted(t.begin(), t.end()));
  CHECK(t.back() / double(t.size() - 1) == Approx(0.02).epsilon(0.03));
  CHECK_THROWS(arrival_times(3, 0.0, 1.0, 0));
}

TEST_CASE("report: percentiles, TPOT, goodput, JSON keys", "[gateway][bench]") {
  CHECK(percentile({1, 2, 3, 4}, 50) == Approx(2.5));
  CHECK(percentile({5, 1, 3}, 100) == 5);
  CHECK(percentile({10, 20}, 99) == Approx(19.9));
  std::vector<request_record> records(3);
  records[0] = {true, "", 10, 5, 0.1, 0.5, {0.1, 0.1, 0.1, 0.1}};  // tpot 100 ms
  records[1] = {true, "", 10, 11, 0.3, 1.3, {0.1}};                // tpot 100 ms, ttft 300
  records[2] = {false, "boom", 10, 0, 0, 0, {}};
  auto s = summarize(records, 2.0, parse_goodput({"ttft:200"}), {50, 99});
  CHECK(s.completed == 2);
  CHECK(s.failed == 1);
  CHECK(s.total_input_tokens == 20);
  CHECK(s.total_output_tokens == 16);
  CHECK(s.request_throughput == Approx(1.0));
  CHECK(s.request_goodput == Approx(0.5)); // only the first meets TTFT <= 200 ms
  CHECK(s.output_throughput == Approx(8.0));
  CHECK(s.ttft.mean_ms == Approx(200));
  CHECK(s.tpot.mean_ms == Approx(100));
  CHECK(s.itl.median_ms == Approx(100));
  CHECK(s.e2el.percentiles_ms.back().first == 99);
  auto j = summary_json(s);
  CHECK(j["p99_ttft_ms"].get<double>() == Approx(298));
  CHECK(j["median_e2el_ms"].get<double>() == Approx(900));
  const std::string table = format_table(s, {"ttft", "e2el"});
  CHECK(table.find("Mean TTFT (ms):") != std::string::npos);
  CHECK(table.find("P99 E2EL (ms):") != std::string::npos);
  CHECK(table.find("TPOT") == std::string::npos);
  CHECK_THROWS(parse_goodput({"latency:5"}));
  CHECK_THROWS(parse_goodput({"ttft"}));
}
