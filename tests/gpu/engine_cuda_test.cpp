// The actor engine with the CUDA executor against the same engine with the CPU executor:
// concurrent greedy requests (chunked prefill, batched decode, prefix caching) give the same
// tokens. fp32 compute on the GPU, so the two backends' logits agree to ~1e-6.
#include "actors/engine.hpp"
#include "gpu/cuda_backend.hpp"
#include "model/cpu_backend.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/gpu/tiny_model.hpp"
#include "tests/testing.hpp"

#include <map>

using namespace actorserve;
using namespace actorserve::gpu::testing;

namespace {

std::map<uint64_t, std::vector<int32_t>> run_engine(backend_factory factory, int requests) {
  engine_config cfg;
  cfg.max_num_seqs = 8;
  cfg.max_num_batched_tokens = 64; // forces chunked prefills mixed with decodes
  auto e = engine::start(cfg, std::move(factory));
  output_queue queue;
  std::map<uint64_t, std::vector<int32_t>> tokens;
  std::map<uint64_t, int> index;
  for (int i = 0; i < requests; ++i) {
    generate_request r;
    for (int t = 0; t < 20 + 9 * i; ++t)
      r.prompt_token_ids.push_back(1 + (t * 37 + i * 11) % 300);
    if (i % 3 == 1) // a shared prefix with request i - 1: the prefix cache serves it
      r.prompt_token_ids.insert(r.prompt_token_ids.begin(), 64, 42);
    r.sampling.temperature = 0.0f;
    r.max_tokens = 12;
    r.ignore_eos = true;
    r.detokenize = false;
    const submit_result s = e->submit(std::move(r), queue.sink());
    REQUIRE(s);
    index[s.request_id] = i;
  }
  int finished = 0;
  while (finished < requests) {
    auto ev = queue.pop(std::chrono::milliseconds(60000));
    REQUIRE(ev.has_value());
    REQUIRE(ev->error == engine_errc::none);
    for (const auto& c : ev->choices)
      tokens[uint64_t(index[ev->request_id])].insert(tokens[uint64_t(index[ev->request_id])].end(),
                                                     c.token_ids.begin(), c.token_ids.end());
    finished += ev->finished ? 1 : 0;
  }
  e->stop();
  return tokens;
}

} // namespace

TEST_CASE("the engine with the CUDA executor gives the CPU executor's tokens", "[gpu][engine]") {
  require_gpu();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), tiny_variants()[0].config);
  const auto path = dir.path();
  const auto cpu = run_engine(
      [path] {
        cpu_backend_options o;
        o.num_blocks = 256;
        o.num_threads = 2;
        return make_cpu_backend(path, o);
      },
      10);
  const auto cuda = run_engine(
      [path] {
        cuda_backend_options o;
        o.dtype = "float32";
        o.num_blocks = 256;
        o.max_num_seqs = 8;
        o.max_num_batched_tokens = 64;
        return make_cuda_backend(path, o);
      },
      10);
  REQUIRE(cpu.size() == 10);
  for (const auto& [id, toks] : cpu) {
    INFO("request " << id);
    REQUIRE(toks.size() == 12);
    REQUIRE(cuda.at(id) == toks);
  }
}
