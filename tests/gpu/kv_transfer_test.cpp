// KV export/import of the CUDA backend (migration by KV shipping, gpu/cuda_kv_transfer.cpp):
// a prefilled sequence exported from scattered blocks and imported into other scattered blocks
// decodes exactly as before; the payload is the CPU backend's layout, so KV moves between the
// two backends in both directions (fp32) and a node continues what another computed; bad tables
// and payloads are refused with model_error and leave the backend working.
#include "gpu/cuda_backend.hpp"
#include "model/cpu_backend.hpp"
#include "model/error.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/gpu/tiny_model.hpp"
#include "tests/testing.hpp"

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

namespace {

// 74 tokens: five blocks of 16, the last one partly filled.
const std::vector<int32_t> kPrompt = {1,   88,  77,  66,  55,  44,  33,  22,  11,  100, 200, 201, 202, 203, 150,
                                      151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165,
                                      166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180,
                                      181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195,
                                      196, 197, 198, 199, 12,  13,  14,  15,  16,  17,  18,  19,  20,  21};

std::unique_ptr<backend> cuda_for(const std::filesystem::path& dir, const std::string& dtype) {
  cuda_backend_options o;
  o.dtype = dtype;
  o.num_blocks = 256;
  o.num_host_blocks = 8;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 128;
  return make_cuda_backend(dir, o);
}

std::unique_ptr<backend> cpu_for(const std::filesystem::path& dir) {
  cpu_backend_options o;
  o.num_blocks = 256;
  o.num_threads = 2;
  return make_cpu_backend(dir, o);
}

/// One step of sequence 7: `count` tokens after `computed` ones already in `table`'s blocks;
/// the logits after the last one (greedy).
std::vector<float> step_logits(backend& b, const std::vector<int32_t>& table, int32_t computed,
                               const int32_t* tokens, int32_t count) {
  step_batch step;
  step_sequence seq;
  seq.seq_id = 7;
  seq.num_computed_tokens = computed;
  seq.num_new_tokens = count;
  seq.needs_logits = true;
  seq.block_table = table;
  step.add(seq, tokens);
  sequence_sampling_state st;
  st.params.temperature = 0.0f;
  std::vector<sampled_token> out;
  std::vector<float> logits;
  b.execute(step, {&st}, out, &logits);
  return logits;
}

/// Computes tokens [from, to) of kPrompt into `table` (the earlier ones are in the cache).
std::vector<float> prefill(backend& b, const std::vector<int32_t>& table, int32_t from, int32_t to) {
  return step_logits(b, table, from, kPrompt.data() + from, to - from);
}

/// One decode step of `token` after the whole prompt held in `table`.
std::vector<float> decode_after_prompt(backend& b, const std::vector<int32_t>& table, int32_t token) {
  return step_logits(b, table, int32_t(kPrompt.size()), &token, 1);
}

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
      return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

// Blocks in no particular order, so a run-per-block copy that assumed contiguous ids would fail.
const std::vector<int32_t> kTableA = {7, 3, 42, 1, 12};
const std::vector<int32_t> kTableB = {200, 50, 199, 75, 20};

} // namespace

TEST_CASE("CUDA KV export and import round-trip between scattered blocks", "[gpu][kv_transfer]") {
  require_gpu();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), tiny_variants()[0].config);
  for (const char* dtype : {"bfloat16", "float32"}) {
    INFO(dtype);
    auto b = cuda_for(dir.path(), dtype);
    const auto layout = b->kv_transfer();
    REQUIRE(layout);
    CHECK(layout->dtype == (std::string(dtype) == "bfloat16" ? "bf16" : "f32"));
    CHECK(layout->element_bytes == (std::string(dtype) == "bfloat16" ? 2 : 4));
    CHECK(layout->num_layers == 3);
    CHECK(layout->num_kv_heads == 2);
    CHECK(layout->head_dim == 32);
    const int32_t n = int32_t(kPrompt.size());

    prefill(*b, kTableA, 0, n);
    std::string payload = "prefix:"; // export appends
    b->export_kv(kTableA, n, payload);
    REQUIRE(payload.size() == 7 + size_t(n) * size_t(layout->token_bytes()));
    REQUIRE(payload.compare(0, 7, "prefix:") == 0);
    const std::string data = payload.substr(7);
    // The payload is the cache's contents, not zeros: the prompt's K/V differ between tokens.
    const size_t tb = size_t(layout->token_bytes()) / size_t(2 * layout->num_layers);
    REQUIRE(data.compare(0, tb, data, tb, tb) != 0);

    b->import_kv(kTableB, n, n, data);
    std::string again;
    b->export_kv(kTableB, n, again);
    REQUIRE(again == data);

    const std::vector<float> from_a = decode_after_prompt(*b, kTableA, 5);
    const std::vector<float> from_b = decode_after_prompt(*b, kTableB, 5);
    REQUIRE(from_b == from_a);

    // Only the first 40 tokens imported (a move that ships what was computed so far); the rest
    // is computed on top of them, and the decode agrees with the original within rounding.
    const std::vector<int32_t> table_c = {100, 101, 102, 103, 104};
    b->import_kv(table_c, 40, n, data);
    prefill(*b, table_c, 40, n);
    const std::vector<float> from_c = decode_after_prompt(*b, table_c, 5);
    CHECK(rel_error(from_c, from_a) < (std::string(dtype) == "bfloat16" ? 2e-2 : 1e-5));
  }
}

TEST_CASE("KV moves between the CPU and CUDA backends in fp32 and the decode continues", "[gpu][kv_transfer]") {
  require_gpu();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), tiny_variants()[0].config);
  auto cpu = cpu_for(dir.path());
  auto gpu = cuda_for(dir.path(), "float32");
  REQUIRE(cpu->kv_transfer() == gpu->kv_transfer()); // same layout: payloads are interchangeable
  const int32_t n = int32_t(kPrompt.size());

  prefill(*cpu, kTableA, 0, n);
  prefill(*gpu, kTableA, 0, n);
  const std::vector<float> cpu_own = decode_after_prompt(*cpu, kTableA, 9);
  const std::vector<float> gpu_own = decode_after_prompt(*gpu, kTableA, 9);
  REQUIRE(rel_error(gpu_own, cpu_own) < 1e-4);

  std::string from_cpu, from_gpu;
  cpu->export_kv(kTableA, n, from_cpu);
  gpu->export_kv(kTableA, n, from_gpu);
  REQUIRE(from_cpu.size() == from_gpu.size());
  gpu->import_kv(kTableB, n, n, from_cpu);
  cpu->import_kv(kTableB, n, n, from_gpu);
  // Each backend now decodes from the other's cache: the results stay with the backend's own.
  CHECK(rel_error(decode_after_prompt(*gpu, kTableB, 9), gpu_own) < 1e-4);
  CHECK(rel_error(decode_after_prompt(*cpu, kTableB, 9), cpu_own) < 1e-4);
}

TEST_CASE("CUDA KV import and export refuse bad tables and payloads and keep working", "[gpu][kv_transfer]") {
  require_gpu();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), tiny_variants()[0].config);
  auto b = cuda_for(dir.path(), "bfloat16");
  const int32_t n = int32_t(kPrompt.size());
  prefill(*b, kTableA, 0, n);
  std::string data;
  b->export_kv(kTableA, n, data);
  std::string out;
  CHECK_THROWS_AS(b->export_kv({7, 3}, n, out), model_error);              // table too short
  CHECK_THROWS_AS(b->export_kv({7, 3, 42, 1, 256}, n, out), model_error);  // block past the cache
  CHECK_THROWS_AS(b->export_kv({7, 3, 42, 1, -1}, n, out), model_error);   // negative block
  CHECK(out.empty());
  CHECK_THROWS_AS(b->import_kv(kTableB, n, n, std::string_view(data).substr(1)), model_error); // short payload
  CHECK_THROWS_AS(b->import_kv(kTableB, n + 1, n, data), model_error);     // more tokens than the data has
  CHECK_THROWS_AS(b->import_kv({200, 50}, n, n, data), model_error);       // table too short
  // Nothing was written by the refused imports, and the backend still computes.
  std::string a_again;
  b->export_kv(kTableA, n, a_again);
  CHECK(a_again == data);
  b->import_kv(kTableB, n, n, data);
  CHECK(decode_after_prompt(*b, kTableB, 5) == decode_after_prompt(*b, kTableA, 5));
}
