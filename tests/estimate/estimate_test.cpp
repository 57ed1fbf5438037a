// `actorserve estimate` arithmetic against figures computed by hand for two real shapes.
// Constants used below: MiB = 1,048,576; GiB = 1,073,741,824; H100 memory.total = 81559 MiB
// = 85,520,809,984 B; budget at 0.9 = floor(76,968,728,985.6) = 76,968,728,985 B.

#include "model/error.hpp"
#include "model/estimate.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>

using namespace actorserve;

namespace {

// Meta-Llama-3-8B: hidden 4096, 32 layers, 32 heads, 8 KV heads, head_dim 128,
// intermediate 14336, vocab 128256, untied embeddings, no biases.
model_config llama3_8b() {
  model_config c;
  c.arch = model_arch::llama;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.vocab_size = 128256;
  c.max_position_embeddings = 8192;
  return c;
}

// Qwen2.5-14B: hidden 5120, 48 layers, 40 heads, 8 KV heads, head_dim 128,
// intermediate 13824, vocab 152064, untied, q/k/v biases.
model_config qwen25_14b() {
  model_config c;
  c.arch = model_arch::qwen2;
  c.hidden_size = 5120;
  c.intermediate_size = 13824;
  c.num_hidden_layers = 48;
  c.num_attention_heads = 40;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.vocab_size = 152064;
  c.max_position_embeddings = 32768;
  c.attention_bias = true;
  return c;
}

const precision_estimate& row(const memory_estimate& e, weight_precision p) {
  for (const auto& r : e.precisions)
    if (r.precision == p)
      return r;
  FAIL("no row for " << precision_name(p));
  throw;
}

const gpu_fit& on(const precision_estimate& r, const std::string& gpu) {
  for (const auto& f : r.gpus)
    if (f.gpu->name == gpu)
      return f;
  FAIL("no GPU " << gpu);
  throw;
}

} // namespace

TEST_CASE("Llama-3-8B: parameters and weights per precision") {
  auto n = count_parameters(llama3_8b(), 128);
  // Per layer: q 4096*4096 = 16,777,216; k = v = 4096*1024 = 4,194,304; o 16,777,216
  //   -> attention 41,943,040; MLP 3*4096*14336 = 176,160,768; linear 218,103,808.
  // 32 layers: 6,979,321,856 linear parameters.
  CHECK(n.linear == 6'979'321'856);
  // Embedding + lm_head 2*128256*4096 = 1,050,673,152; norms 32*2*4096 + 4096 = 266,240.
  CHECK(n.other == 1'050'939'392);
  CHECK(n.total() == 8'030'261'248); // the published 8.03 B
  // Output channels per layer 4096+1024+1024+4096+14336+14336+4096 = 43,008; *32.
  CHECK(n.linear_output_channels == 1'376'256);
  // Groups of 128 inputs: linear / 128 (every in_features divides by 128).
  CHECK(n.int4_groups == 54'525'952);

  auto e = estimate_memory(llama3_8b(), {.max_model_len = 8192, .concurrency = 16});
  // fp32: 8,030,261,248 * 4.
  CHECK(row(e, weight_precision::fp32).weight_bytes == 32'121'044'992);
  // bf16: 8,030,261,248 * 2.
  CHECK(row(e, weight_precision::bf16).weight_bytes == 16'060'522'496);
  // fp8: linear 6,979,321,856 * 1 + 224 matrices * 4 B scales (896) + other 1,050,939,392 * 2
  //   = 6,979,321,856 + 896 + 2,101,878,784.
  CHECK(row(e, weight_precision::fp8).weight_bytes == 9'081'201'536);
  // int8: 6,979,321,856 + 1,376,256 channels * 4 (5,505,024) + 2,101,878,784.
  CHECK(row(e, weight_precision::int8).weight_bytes == 9'086'705'664);
  // int4: 6,979,321,856 / 2 = 3,489,660,928 + 54,525,952 groups * 2.5 B = 136,314,880
  //   + 2,101,878,784.
  CHECK(row(e, weight_precision::int4).weight_bytes == 5'727'854'592);
}

TEST_CASE("Llama-3-8B bf16: KV cache, activations, overhead and H100 capacity") {
  auto e = estimate_memory(llama3_8b(), {.max_model_len = 8192, .concurrency = 16});
  const auto& r = row(e, weight_precision::bf16);
  // KV per token: 2 * 32 layers * 8 heads * 128 * 2 B = 131,072 B (128 KiB).
  CHECK(r.kv_bytes_per_token == 131'072);
  // 8192 tokens = 512 blocks of 16: 1 GiB per sequence, 16 GiB for 16 sequences.
  CHECK(r.kv_bytes_per_sequence == 1'073'741'824);
  CHECK(r.kv_bytes == 17'179'869'184);
  // Activations: peak elements per token 2*4096 + max(2*4096 + 2*1024, 3*14336) = 51,200;
  //   2048 tokens * 51,200 * 2 B = 209,715,200; logits 256 seqs * 128,256 * 8 B = 262,668,288.
  CHECK(r.activation_bytes == 472'383'488);
  // CUDA graphs: 512 MiB (536,870,912) + 256 tokens * 51,200 * 2 B (26,214,400).
  CHECK(r.cuda_graph_bytes == 563'085'312);
  CHECK(r.runtime_bytes == 1'073'741'824);
  // Total: 16,060,522,496 + 472,383,488 + 563,085,312 + 1,073,741,824 + 17,179,869,184.
  CHECK(r.total_bytes == 35'349'602'304);

  // H100: KV budget = 76,968,728,985 - 18,169,733,120 (everything but KV) = 58,798,995,865;
  //   blocks of 16 * 131,072 = 2,097,152 B: 28,037 (28,037 * 2,097,152 = 58,797,850,624 fits,
  //   one more does not); 28,037 / 512 blocks per sequence = 54 sequences of 8192 tokens.
  const auto& h100 = on(r, "H100 80GB");
  CHECK(h100.budget_bytes == 76'968'728'985);
  CHECK(h100.kv_budget_bytes == 58'798'995'865);
  CHECK(h100.num_kv_blocks == 28'037);
  CHECK(h100.max_sequences == 54);
  CHECK(h100.fits);
  // T4: budget floor(0.9 * 15360 MiB) = 14,495,514,624 < 16 GB of bf16 weights alone.
  const auto& t4 = on(r, "T4 16GB");
  CHECK_FALSE(t4.fits);
  CHECK(t4.max_sequences == 0);
  CHECK(t4.kv_budget_bytes < 0);
  // L4: floor(0.9 * 23034 MiB) = 21,737,609,625 - 18,169,733,120 = 3,567,876,505 for KV:
  //   1,701 blocks = 3 sequences of 8192, fewer than the 16 asked for.
  const auto& l4 = on(r, "L4 24GB");
  CHECK(l4.num_kv_blocks == 1'701);
  CHECK(l4.max_sequences == 3);
  CHECK_FALSE(l4.fits);
}

TEST_CASE("Llama-3-8B: fp8 needs an fp8-capable GPU, int4 fits a T4") {
  auto e = estimate_memory(llama3_8b(), {.max_model_len = 8192, .concurrency = 2});
  // A100 80GB has the memory for fp8 weights but no fp8 tensor cores.
  const auto& fp8_a100 = on(row(e, weight_precision::fp8), "A100 80GB");
  CHECK_FALSE(fp8_a100.fits);
  CHECK_THAT(fp8_a100.note, Catch::Contains("8.9"));
  CHECK(on(row(e, weight_precision::fp8), "H100 80GB").fits);
  // int4 on a T4: 14,495,514,624 - (5,727,854,592 + 472,383,488 + 563,085,312 + 1,073,741,824)
  //   = 6,658,449,408 B; / 2,097,152 = 3,174 blocks; / 512 = 6 sequences >= 2.
  const auto& int4_t4 = on(row(e, weight_precision::int4), "T4 16GB");
  CHECK(int4_t4.num_kv_blocks == 3'174);
  CHECK(int4_t4.max_sequences == 6);
  CHECK(int4_t4.fits);
  // The bf16 activation dtype is flagged on the T4 (no bf16 there), the verdict kept.
  CHECK_THAT(int4_t4.note, Catch::Contains("float16"));
}

TEST_CASE("Qwen2.5-14B: parameters, KV cache and capacity at 32k context") {
  auto n = count_parameters(qwen25_14b(), 128);
  // Per layer: q 5120*5120 = 26,214,400; k = v = 5120*1024 = 5,242,880; o 26,214,400
  //   -> 62,914,560; MLP 3*5120*13824 = 212,336,640; linear 275,251,200; *48 = 13,212,057,600.
  CHECK(n.linear == 13'212'057'600);
  // Embedding + lm_head 2*152064*5120 = 1,557,135,360; per layer norms 2*5120 + biases
  //   5120+1024+1024 = 17,408, *48 = 835,584; final norm 5120 -> 1,557,976,064.
  CHECK(n.other == 1'557'976'064);
  CHECK(n.total() == 14'770'033'664); // the published 14.7 B

  auto e = estimate_memory(qwen25_14b(), {.max_model_len = 32768, .concurrency = 4});
  const auto& r = row(e, weight_precision::bf16);
  CHECK(r.weight_bytes == 29'540'067'328); // 14,770,033,664 * 2
  // KV per token: 2 * 48 * 8 * 128 * 2 B = 196,608 B (192 KiB); 32768 tokens: 6 GiB.
  CHECK(r.kv_bytes_per_token == 196'608);
  CHECK(r.kv_bytes_per_sequence == 6'442'450'944);
  CHECK(r.kv_bytes == 25'769'803'776);
  // Peak per token 2*5120 + max(2*5120 + 2*1024, 3*13824) = 51,712; 2048 * 51,712 * 2
  //   = 211,812,352; logits 256 * 152,064 * 8 = 311,427,072.
  CHECK(r.activation_bytes == 523'239'424);
  // H100: 76,968,728,985 - (29,540,067,328 + 523,239,424 + 563,347,456 + 1,073,741,824)
  //   = 45,268,332,953; blocks of 16 * 196,608 = 3,145,728 B: 14,390; / 2048 = 7 sequences.
  const auto& h100 = on(r, "H100 80GB");
  CHECK(h100.kv_budget_bytes == 45'268'332'953);
  CHECK(h100.num_kv_blocks == 14'390);
  CHECK(h100.max_sequences == 7);
  CHECK(h100.fits);
  // A100 40GB: 38,654,705,664 - 31,700,396,032 = 6,954,309,632; 2,210 blocks: 1 sequence.
  const auto& a100 = on(r, "A100 40GB");
  CHECK(a100.max_sequences == 1);
  CHECK_FALSE(a100.fits);
  // fp32 (59 GB of weights) leaves an H100 room for one such sequence, not four:
  // 76,968,728,985 - (59,080,134,656 + 735,051,776 + 589,824,000 + 1,073,741,824) = 15,489,976,729;
  //   fp32 KV is 393,216 B/token, blocks of 6,291,456 B: 2,462 blocks; / 2048 = 1 sequence.
  const auto& fp32_h100 = on(row(e, weight_precision::fp32), "H100 80GB");
  CHECK(fp32_h100.num_kv_blocks == 2'462);
  CHECK(fp32_h100.max_sequences == 1);
  CHECK_FALSE(fp32_h100.fits);
}

TEST_CASE("Qwen2.5-14B with tensor parallel 2: weights and KV heads split per GPU") {
  auto e = estimate_memory(qwen25_14b(), {.max_model_len = 32768, .concurrency = 4, .tensor_parallel_size = 2});
  const auto& r = row(e, weight_precision::bf16);
  CHECK(r.weight_bytes == 14'770'033'664);  // 29,540,067,328 / 2
  CHECK(r.kv_bytes_per_token == 98'304);    // 4 KV heads per GPU: 2 * 48 * 4 * 128 * 2
  CHECK(r.runtime_bytes == 1'610'612'736);  // 1 GiB + 512 MiB of NCCL buffers
  // Peak per token 2*5120 + 41,472 / 2 = 30,976; 2048 * 30,976 * 2 = 126,877,696 + logits.
  CHECK(r.activation_bytes == 126'877'696 + 311'427'072);
  CHECK(on(r, "H100 80GB").max_sequences == 18);
}

TEST_CASE("estimate rejects options that make no sense") {
  CHECK_THROWS_AS(estimate_memory(llama3_8b(), {.concurrency = 0}), model_error);
  CHECK_THROWS_AS(estimate_memory(llama3_8b(), {.gpu_memory_utilization = 1.5}), model_error);
  CHECK_THROWS_WITH(estimate_memory(llama3_8b(), {.tensor_parallel_size = 3}), Catch::Contains("does not divide"));
  model_config empty;
  CHECK_THROWS_AS(estimate_memory(empty, {}), model_error);
  // max_model_len 0 means the model's own context.
  CHECK(estimate_memory(llama3_8b(), {}).options.max_model_len == 8192);
}

TEST_CASE("estimate reads pre-quantized configs that serving refuses") {
  const std::string awq = R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "torch_dtype": "float16",
    "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 64, "version": "gemm"}})";
  auto c = parse_estimate_config(awq);
  REQUIRE(c.checkpoint_quantization == weight_precision::int4);
  CHECK(c.checkpoint_group_size == 64);
  CHECK(c.model.num_hidden_layers == 32);
  CHECK(c.model.head_dim == 128);

  auto fp8 = parse_estimate_config(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
    "max_position_embeddings": 256, "quantization_config": {"quant_method": "compressed-tensors",
    "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}}}})");
  CHECK(fp8.checkpoint_quantization == weight_precision::fp8);

  CHECK_THROWS_WITH(parse_estimate_config(R"({"architectures": ["LlamaForCausalLM"],
    "quantization_config": {"quant_method": "bitsandbytes"}})"), Catch::Contains("bitsandbytes"));
  CHECK_THROWS_AS(parse_estimate_config("{not json"), model_error);
}

TEST_CASE("estimate loads the bundled demo model's config") {
  auto c = load_estimate_config(testing::source_dir() / "models" / "demo");
  CHECK_FALSE(c.checkpoint_quantization);
  auto e = estimate_memory(c.model, {});
  // Tied embeddings: 4096 * 384 once; 6 layers.
  CHECK(e.params.other == 4096 * 384 + 6 * 2 * 384 + 384);
  CHECK(row(e, weight_precision::bf16).kv_bytes_per_token == 2 * 6 * 2 * 64 * 2);
  CHECK_THROWS_WITH(load_estimate_config(testing::source_dir() / "no-such-model"), Catch::Contains("cannot be opened"));
}

TEST_CASE("actorserve estimate --json reports the same figures") {
  testing::temp_dir dir;
  {
    std::ofstream config(dir.path() / "config.json");
    config << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
      "max_position_embeddings": 8192, "rope_theta": 500000.0, "torch_dtype": "bfloat16"})";
  }
  auto out_path = dir.path() / "out.json";
  auto command = testing::executable().string() + " estimate --model " + dir.path().string() +
                 " --max-model-len 8192 --concurrency 16 --json > " + out_path.string();
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in(out_path);
  auto j = nlohmann::json::parse(in);
  CHECK(j["selected"] == "bf16");
  CHECK(j["model"]["parameters"] == 8'030'261'248);
  const auto& bf16 = j["precisions"][1];
  CHECK(bf16["precision"] == "bf16");
  CHECK(bf16["kv_bytes_per_token"] == 131'072);
  bool found = false;
  for (const auto& g : bf16["gpus"])
    if (g["gpu"] == "H100 80GB") {
      found = true;
      CHECK(g["num_kv_blocks"] == 28'037);
      CHECK(g["max_sequences"] == 54);
      CHECK(g["fits"] == true);
    }
  CHECK(found);
  // Bad input: a clear error and a non-zero exit, not a crash.
  auto bad = testing::executable().string() + " estimate --model " + dir.path().string() +
             " --concurrency 0 2> " + (dir.path() / "err.txt").string();
  CHECK(std::system(bad.c_str()) != 0);
  std::ifstream err(dir.path() / "err.txt");
  std::string message((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK_THAT(message, Catch::Contains("concurrency must be positive"));
}
