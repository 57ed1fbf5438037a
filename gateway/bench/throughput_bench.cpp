#include "gateway/bench/throughput_bench.hpp"

#include "gateway/model_location.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace actorserve::gateway::bench {

int run_throughput_bench(const throughput_bench_options& o) {
  namespace fs = std::filesystem;
  const fs::path model_dir = o.model.empty() ? default_model_dir() : fs::path(o.model);
  const tokenizer tok = tokenizer::from_dir(model_dir);
  random_dataset_options d = o.dataset;
  d.vocab_size = int64_t(tok.vocab_size());
  for (uint32_t id : tok.special_ids())
    d.excluded_ids.push_back(int32_t(id));
  const std::vector<bench_request> dataset = make_random_dataset(d);

  engine_config ec = o.engine;
  ec.max_waiting_requests = std::max<int32_t>(ec.max_waiting_requests, int32_t(dataset.size()));
  const std::string device = resolve_device(o.backend.device);
  auto eng = engine::start(ec, make_backend_factory(o.backend, ec, model_dir, device));

  std::mutex mutex;
  std::condition_variable all_done;
  size_t finished = 0, failed = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  const auto start = engine_clock::now();
  for (size_t i = 0; i < dataset.size(); ++i) {
    generate_request r;
    r.prompt_token_ids = dataset[i].prompt_token_ids;
    r.max_tokens = dataset[i].output_len;
    r.ignore_eos = o.ignore_eos;
    r.detokenize = false;
    r.sampling.temperature = float(o.temperature);
    r.has_seed = true;
    r.sampling.seed = d.seed + i;
    auto submitted = eng->submit(std::move(r), [&](request_output&& out) {
      if (!out.finished)
        return;
      std::lock_guard lock(mutex);
      ++finished;
      failed += out.error != engine_errc::none ? 1 : 0;
      input_tokens += out.usage.prompt_tokens;
      output_tokens += out.usage.completion_tokens;
      if (finished == dataset.size())
        all_done.notify_all();
    });
    if (!submitted)
      throw std::runtime_error("submit failed: " + submitted.message);
  }
  {
    std::unique_lock lock(mutex);
    all_done.wait(lock, [&] { return finished == dataset.size(); });
  }
  const double seconds = std::chrono::duration<double>(engine_clock::now() - start).count();
  eng.reset();

  std::printf("bench throughput: %zu requests on %s (%s), input %d, output %d, range ratio %.2f\n", dataset.size(),
              model_dir.c_str(), device.c_str(), d.input_len, d.output_len, d.range_ratio);
  std::printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n",
              double(dataset.size()) / seconds, double(input_tokens + output_tokens) / seconds,
              double(output_tokens) / seconds);
  std::printf("Total num prompt tokens:  %lld\nTotal num output tokens:  %lld\nElapsed time (s):         %.2f\n",
              static_cast<long long>(input_tokens), static_cast<long long>(output_tokens), seconds);
  if (failed)
    std::printf("failed requests: %zu\n", failed);
  if (!o.result_file.empty()) {
    nlohmann::json j = {{"elapsed_time", seconds},
                        {"num_requests", dataset.size()},
                        {"failed_requests", failed},
                        {"total_num_tokens", input_tokens + output_tokens},
                        {"total_output_tokens", output_tokens},
                        {"requests_per_second", double(dataset.size()) / seconds},
                        {"tokens_per_second", double(input_tokens + output_tokens) / seconds},
                        {"output_tokens_per_second", double(output_tokens) / seconds},
                        {"device", device},
                        {"model", model_dir.string()}};
    std::ofstream(o.result_file) << j.dump(2) << "\n";
  }
  return failed == dataset.size() ? 1 : 0;
}

} // namespace actorserve::gateway::bench
