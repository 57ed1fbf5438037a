#include "gateway/bench/serve_bench.hpp"

#include "gateway/sse.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace actorserve::gateway::bench {
namespace {

using clock_type = std::chrono::steady_clock;
using nlohmann::json;

std::string fmt_rate(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", rate);
  return buf;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

httplib::Headers auth_headers(const std::string& api_key) {
  httplib::Headers h;
  if (!api_key.empty())
    h.emplace("Authorization", "Bearer " + api_key);
  return h;
}

std::unique_ptr<httplib::Client> make_client(const serve_bench_options& o) {
  auto client = std::make_unique<httplib::Client>(o.base_url);
  client->set_connection_timeout(10, 0);
  client->set_read_timeout(o.timeout_s, 0);
  client->set_write_timeout(30, 0);
  client->set_keep_alive(true);
  return client;
}

// The server's model name and folder (GET /v1/models).
std::pair<std::string, std::string> server_model(const serve_bench_options& o) {
  auto client = make_client(o);
  auto res = client->Get("/v1/models", auth_headers(o.api_key));
  if (!res)
    throw std::runtime_error("cannot reach " + o.base_url + ": " + httplib::to_string(res.error()));
  if (res->status != 200)
    throw std::runtime_error("GET /v1/models answered " + std::to_string(res->status) + ": " + res->body);
  const json models = json::parse(res->body);
  if (!models.contains("data") || models["data"].empty())
    throw std::runtime_error("the server lists no models");
  const json& first = models["data"][0];
  return {first.value("id", ""), first.value("root", "")};
}

struct request_body {
  std::string json_text;
  int32_t output_len = 0;
};

request_body make_body(const serve_bench_options& o, const std::string& model, const bench_request& r,
                       const tokenizer* tok) {
  json j = {{"model", model},
            {"max_tokens", r.output_len},
            {"temperature", o.temperature},
            {"stream", true},
            {"stream_options", {{"include_usage", true}}},
            {"ignore_eos", o.ignore_eos}};
  if (o.endpoint == "/v1/chat/completions")
    j["messages"] = json::array({{{"role", "user"}, {"content", tok->decode(r.prompt_token_ids)}}});
  else
    j["prompt"] = r.prompt_token_ids; // token ids: exact input lengths, no re-tokenization drift
  return {j.dump(), r.output_len};
}

// One streamed request: TTFT at the first chunk that carries text, a gap per later chunk.
request_record run_one(httplib::Client& client, const serve_bench_options& o, const request_body& body) {
  request_record rec;
  const auto start = clock_type::now();
  clock_type::time_point last{};
  bool first = true;
  std::string error_event;
  sse_parser parser([&](std::string_view data) {
    if (data == "[DONE]")
      return;
    json chunk = json::parse(data, nullptr, false);
    if (chunk.is_discarded())
      return;
    if (chunk.contains("error")) {
      error_event = chunk["error"].value("message", "error event");
      return;
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      rec.prompt_len = chunk["usage"].value("prompt_tokens", 0);
      rec.output_len = chunk["usage"].value("completion_tokens", 0);
    }
    bool has_text = false;
    for (const json& c : chunk.value("choices", json::array())) {
      if (c.contains("text") && c["text"].is_string() && !c["text"].get<std::string>().empty()) has_text = true;
      if (c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string() &&
          !c["delta"]["content"].get<std::string>().empty())
        has_text = true;
    }
    if (!has_text)
      return;
    const auto now = clock_type::now();
    if (first) {
      rec.ttft_s = std::chrono::duration<double>(now - start).count();
      first = false;
    } else {
      rec.itl_s.push_back(std::chrono::duration<double>(now - last).count());
    }
    last = now;
  });
  httplib::Request req;
  req.method = "POST";
  req.path = o.endpoint;
  req.headers = auth_headers(o.api_key);
  req.set_header("Content-Type", "application/json");
  req.body = body.json_text;
  int status = 0;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  std::string error_body;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (status != 200)
      error_body.append(data, len);
    else
      parser.feed(std::string_view(data, len));
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool ok = client.send(req, res, err);
  rec.e2el_s = seconds_since(start);
  if (!ok)
    rec.error = "HTTP: " + httplib::to_string(err);
  else if (status != 200)
    rec.error = "status " + std::to_string(status) + ": " + error_body.substr(0, 300);
  else if (!error_event.empty())
    rec.error = error_event;
  else if (first)
    rec.error = rec.output_len > 0
                    ? "no text received although the server reports " + std::to_string(rec.output_len) +
                          " completion tokens (they decode to empty text: special tokens of a random model, try "
                          "--temperature 1; or ids the tokenizer does not cover, see the server's warnings)"
                    : "no tokens received";
  rec.success = rec.error.empty();
  return rec;
}

} // namespace

int run_serve_bench(const serve_bench_options& o_in) {
  serve_bench_options o = o_in;
  if (o.endpoint != "/v1/completions" && o.endpoint != "/v1/chat/completions")
    throw std::invalid_argument("--endpoint must be /v1/completions or /v1/chat/completions");
  auto [model, root] = server_model(o);
  if (o.model.empty())
    o.model = model;
  const std::string tok_dir = o.tokenizer.empty() ? root : o.tokenizer;
  if (tok_dir.empty() || !std::filesystem::exists(std::filesystem::path(tok_dir) / "tokenizer.json"))
    throw std::runtime_error("no tokenizer.json in '" + tok_dir + "': pass --tokenizer <model folder>");
  const tokenizer tok = tokenizer::from_dir(tok_dir);
  random_dataset_options d = o.dataset;
  d.vocab_size = int64_t(tok.vocab_size());
  for (uint32_t id : tok.special_ids())
    d.excluded_ids.push_back(int32_t(id));
  const std::vector<bench_request> dataset = make_random_dataset(d);
  const std::vector<double> arrivals = arrival_times(dataset.size(), o.request_rate, o.burstiness, d.seed);
  const slo goodput = parse_goodput(o.goodput);
  std::vector<request_body> bodies;
  for (const bench_request& r : dataset)
    bodies.push_back(make_body(o, o.model, r, &tok));

  {
    auto client = make_client(o);
    request_record probe = run_one(*client, o, bodies.front());
    if (!probe.success)
      throw std::runtime_error("the test request failed: " + probe.error);
  }
  const size_t workers = std::min<size_t>(o.max_concurrency > 0 ? size_t(o.max_concurrency) : dataset.size(), 2048);
  std::printf("bench serve: %zu requests to %s%s (model %s), request rate %s, burstiness %.2f, max concurrency %s\n",
              dataset.size(), o.base_url.c_str(), o.endpoint.c_str(), o.model.c_str(),
              std::isfinite(o.request_rate) ? fmt_rate(o.request_rate).c_str() : "inf", o.burstiness,
              o.max_concurrency > 0 ? std::to_string(o.max_concurrency).c_str() : "none");
  std::fflush(stdout);

  // The dispatcher releases request i at its arrival time; `workers` threads take released
  // requests in order, which caps the requests in flight at max_concurrency.
  std::vector<request_record> records(dataset.size());
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<size_t> released;
  bool all_released = false;
  const auto start = clock_type::now();
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      auto client = make_client(o);
      for (;;) {
        size_t i;
        {
          std::unique_lock lock(mutex);
          ready.wait(lock, [&] { return !released.empty() || all_released; });
          if (released.empty())
            return;
          i = released.front();
          released.pop_front();
        }
        records[i] = run_one(*client, o, bodies[i]);
      }
    });
  for (size_t i = 0; i < dataset.size(); ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<clock_type::duration>(
                                              std::chrono::duration<double>(arrivals[i])));
    {
      std::lock_guard lock(mutex);
      released.push_back(i);
    }
    ready.notify_one();
  }
  {
    std::lock_guard lock(mutex);
    all_released = true;
  }
  ready.notify_all();
  for (std::thread& t : pool)
    t.join();
  const double duration = seconds_since(start);

  const bench_summary s = summarize(records, duration, goodput, o.metric_percentiles);
  std::cout << format_table(s, o.percentile_metrics);
  std::vector<std::string> errors;
  for (const request_record& r : records)
    if (!r.success && errors.size() < 5)
      errors.push_back(r.error);
  for (const std::string& e : errors)
    std::cout << "error: " << e << "\n";
  if (!o.result_file.empty()) {
    json j = summary_json(s);
    j["model_id"] = o.model;
    j["endpoint"] = o.endpoint;
    j["num_prompts"] = dataset.size();
    j["request_rate"] = std::isfinite(o.request_rate) ? json(o.request_rate) : json("inf");
    j["burstiness"] = o.burstiness;
    j["max_concurrency"] = o.max_concurrency > 0 ? json(o.max_concurrency) : json(nullptr);
    j["random_input_len"] = o.dataset.input_len;
    j["random_output_len"] = o.dataset.output_len;
    j["random_range_ratio"] = o.dataset.range_ratio;
    j["seed"] = o.dataset.seed;
    json input_lens = json::array(), output_lens = json::array(), ttfts = json::array(), errs = json::array();
    for (const request_record& r : records) {
      input_lens.push_back(r.prompt_len);
      output_lens.push_back(r.output_len);
      ttfts.push_back(r.ttft_s);
      errs.push_back(r.error);
    }
    j["input_lens"] = input_lens;
    j["output_lens"] = output_lens;
    j["ttfts"] = ttfts;
    j["errors"] = errs;
    std::ofstream(o.result_file) << j.dump(2) << "\n";
    std::cout << "result written to " << o.result_file << "\n";
  }
  return s.completed > 0 ? 0 : 1;
}

} // namespace actorserve::gateway::bench
