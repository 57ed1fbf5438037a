// End to end on the CPU reference backend with the bundled demo model (models/demo, an 11M
// parameter Llama): many concurrent requests get exactly the tokens each gets alone, greedy and
// seeded; a KV pool small enough to force preemption changes nothing; greedy output equals the
// single-sequence generate loop.
#include "engine_helpers.hpp"
#include "tests/testing.hpp"

#include "actors/tokenizer_detokenizer.hpp"

#include "model/cpu_backend.hpp"
#include "model/generate_loop.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

using namespace actorserve;
using namespace actorserve::testing;

namespace {

std::filesystem::path demo_model() { return source_dir() / "models" / "demo"; }

backend_factory cpu_factory(int32_t num_blocks, int32_t num_host_blocks = 0) {
  return [=] {
    cpu_backend_options o;
    o.block_size = 16;
    o.num_blocks = num_blocks;
    o.num_host_blocks = num_host_blocks;
    o.num_threads = 2;
    return make_cpu_backend(demo_model(), o);
  };
}

std::vector<generate_request> demo_workload() {
  std::vector<generate_request> out;
  for (int i = 0; i < 10; ++i) {
    auto prompt = prompt_of(4 + (i * 13) % 40, i, 4000);
    out.push_back(request_of(uint64_t(i + 1), prompt, 12 + i % 5, i % 2 ? 0.8f : 0.0f, uint64_t(31 + i)));
    out.back().ignore_eos = true;
    out.back().sampling.top_k = i % 3 == 0 ? 20 : 0;
  }
  return out;
}

engine_config cpu_config() {
  engine_config c;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 64;
  return c;
}

} // namespace

TEST_CASE("CPU backend: concurrent requests equal each request alone", "[engine][cpu]") {
  auto reqs = demo_workload();
  auto e = engine::start(cpu_config(), cpu_factory(256));
  std::map<uint64_t, std::vector<int32_t>> alone;
  for (const auto& r : reqs)
    alone[r.id] = run_all(*e, {r})[r.id].tokens[0];
  auto together = run_all(*e, reqs);
  for (const auto& r : reqs) {
    CHECK(together[r.id].tokens[0] == alone[r.id]);
    CHECK(together[r.id].tokens[0].size() == size_t(r.max_tokens));
  }
}

TEST_CASE("CPU backend: greedy output equals the single-sequence loop", "[engine][cpu]") {
  auto e = engine::start(cpu_config(), cpu_factory(64));
  auto prompt = prompt_of(21, 3, 4000);
  auto req = request_of(1, prompt, 10);
  req.ignore_eos = true;
  auto got = run_all(*e, {req})[1];
  cpu_backend_options o;
  o.num_threads = 2;
  auto b = make_cpu_backend(demo_model(), o);
  generation_options g;
  g.max_tokens = 10;
  g.sampling.temperature = 0.0f;
  g.ignore_eos = true;
  auto ref = generate_sequence(*b, prompt, g);
  CHECK(got.tokens[0] == ref.token_ids);
}

TEST_CASE("CPU backend: preemption under a small KV pool gives identical output", "[engine][cpu]") {
  auto reqs = demo_workload();
  auto big = engine::start(cpu_config(), cpu_factory(256));
  auto expected = run_all(*big, reqs);
  for (auto mode : {preemption_mode::recompute, preemption_mode::swap}) {
    engine_config c = cpu_config();
    c.preemption = mode;
    // 8 blocks of 16 tokens for 10 requests of up to 60 tokens: preemption is constant.
    auto small = engine::start(c, cpu_factory(8, 32));
    auto got = run_all(*small, reqs);
    CHECK(small->stats().num_preemptions > 0);
    for (const auto& r : reqs)
      CHECK(got[r.id].tokens[0] == expected[r.id].tokens[0]);
  }
}

TEST_CASE("CPU backend: the engine reproduces Hugging Face greedy output", "[engine][cpu]") {
  std::ifstream in(source_dir() / "tests" / "fixtures" / "demo" / "hf_greedy.json");
  REQUIRE(in);
  auto fixture = nlohmann::json::parse(in);
  std::vector<generate_request> reqs;
  std::map<uint64_t, std::vector<int32_t>> expected;
  uint64_t id = 1;
  for (const auto& c : fixture["cases"]) {
    auto r = request_of(id, c["prompt_ids"].get<std::vector<int32_t>>(), int32_t(c["greedy_ids"].size()));
    r.ignore_eos = true; // the fixture runs through EOS
    expected[id] = c["greedy_ids"].get<std::vector<int32_t>>();
    reqs.push_back(r);
    ++id;
  }
  auto e = engine::start(cpu_config(), cpu_factory(256));
  auto got = run_all(*e, reqs);
  for (const auto& r : reqs)
    CHECK(got[r.id].tokens[0] == expected[r.id]);
}

TEST_CASE("CPU backend: streamed text through the demo tokenizer equals the HF text", "[engine][cpu]") {
  std::ifstream in(source_dir() / "tests" / "fixtures" / "demo" / "hf_greedy.json");
  REQUIRE(in);
  auto fixture = nlohmann::json::parse(in);
  auto tok = tokenizer::from_dir(demo_model());
  auto e = engine::start(cpu_config(), cpu_factory(256), make_detokenizer(tok));
  std::vector<generate_request> reqs;
  uint64_t id = 1;
  for (const auto& c : fixture["cases"]) {
    auto ids = tok.encode(c["prompt"].get<std::string>(), true);
    auto r = request_of(id++, std::vector<int32_t>(ids.begin(), ids.end()), int32_t(c["greedy_ids"].size()));
    CHECK(r.prompt_token_ids == c["prompt_ids"].get<std::vector<int32_t>>());
    r.ignore_eos = true;
    r.skip_special_tokens = false; // the fixture's text shows the special tokens
    reqs.push_back(r);
  }
  auto got = run_all(*e, reqs);
  size_t i = 0;
  for (const auto& c : fixture["cases"]) {
    CHECK(got[reqs[i].id].text[0] == c["greedy_text"].get<std::string>());
    ++i;
  }

  // A stop string inside the first case's text ends it there, across token boundaries.
  std::string text = fixture["cases"][0]["greedy_text"];
  auto stop = reqs[0];
  stop.id = 100;
  stop.stop = {"Mencken"};
  auto cut = run_all(*e, {stop})[100];
  CHECK(cut.finish[0] == finish_reason::stop);
  CHECK(cut.text[0] == text.substr(0, text.find("Mencken")));
}
