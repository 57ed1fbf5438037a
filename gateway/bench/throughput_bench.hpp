#pragma once
// `actorserve bench throughput`: the same random workload run offline, through the engine in
// this process (no HTTP): every request submitted at once, the wall time until the last one
// finishes. Like vLLM's `bench throughput`.

#include "gateway/backend_setup.hpp"
#include "gateway/bench/workload.hpp"

#include <string>

namespace actorserve::gateway::bench {

struct throughput_bench_options {
  std::string model;  // model folder; empty: the bundled demo model
  backend_config backend;
  engine_config engine;
  random_dataset_options dataset;
  bool ignore_eos = false;
  double temperature = 0.0;
  std::string result_file;
};

int run_throughput_bench(const throughput_bench_options& options);

} // namespace actorserve::gateway::bench
