#pragma once
// Tiny random models of every supported architecture in the Hugging Face layout (config.json +
// model.safetensors), and a minimal step driver (block allocation, prefill chunks, decodes)
// for running the same generation through two backends.

#include "model/backend.hpp"
#include "model/config.hpp"
#include "model/safetensors.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace actorserve::gpu::testing {

struct tiny_variant {
  std::string name;
  model_config config;
};

inline std::vector<tiny_variant> tiny_variants() {
  std::vector<tiny_variant> out;
  model_config base;
  base.hidden_size = 128;
  base.intermediate_size = 352;
  base.num_hidden_layers = 3;
  base.num_attention_heads = 4;
  base.num_key_value_heads = 2;
  base.head_dim = 32;
  base.vocab_size = 301; // odd on purpose
  base.max_position_embeddings = 2048;
  base.rms_norm_eps = 1e-5;
  base.rope_theta = 10000.0;
  base.torch_dtype = "bfloat16";
  base.bos_token_ids = {1};
  base.eos_token_ids = {2};

  model_config llama = base;
  llama.arch = model_arch::llama;
  llama.architecture = "LlamaForCausalLM";
  llama.rope_theta = 500000.0;
  llama.rope_scaling.type = rope_scaling_type::llama3;
  llama.rope_scaling.factor = 8.0;
  llama.rope_scaling.low_freq_factor = 1.0;
  llama.rope_scaling.high_freq_factor = 4.0;
  llama.rope_scaling.original_max_position_embeddings = 64;
  out.push_back({"llama", llama});

  model_config qwen2 = base;
  qwen2.arch = model_arch::qwen2;
  qwen2.architecture = "Qwen2ForCausalLM";
  qwen2.attention_bias = true;
  qwen2.tie_word_embeddings = true;
  qwen2.num_key_value_heads = 1; // GQA group 4 of one KV head
  out.push_back({"qwen2", qwen2});

  model_config qwen3 = base;
  qwen3.arch = model_arch::qwen3;
  qwen3.architecture = "Qwen3ForCausalLM";
  qwen3.qk_norm = true;
  qwen3.head_dim = 64; // q_size 256 != hidden 128, as in real Qwen3 models
  qwen3.tie_word_embeddings = true;
  out.push_back({"qwen3", qwen3});

  model_config mistral = base;
  mistral.arch = model_arch::mistral;
  mistral.architecture = "MistralForCausalLM";
  mistral.num_key_value_heads = 4; // plain multi-head attention
  mistral.rope_scaling.type = rope_scaling_type::linear;
  mistral.rope_scaling.factor = 2.0;
  out.push_back({"mistral", mistral});
  return out;
}

/// Writes config.json and model.safetensors (bf16) with seeded random weights: N(0, 0.08)
/// matrices, norm weights around 1, biases N(0, 0.1).
inline void write_tiny_model(const std::filesystem::path& dir, const model_config& c, uint32_t seed = 1234) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << model_config_to_json(c);
  const int64_t h = c.hidden_size, i = c.intermediate_size, q = c.q_size(), kv = c.kv_size();
  std::vector<tensor_spec> specs;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    specs.push_back({name, dtype::bf16, std::move(shape)});
  };
  add("model.embed_tokens.weight", {c.vocab_size, h});
  add("model.norm.weight", {h});
  if (!c.tie_word_embeddings)
    add("lm_head.weight", {c.vocab_size, h});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {h});
    add(p + "post_attention_layernorm.weight", {h});
    add(p + "self_attn.q_proj.weight", {q, h});
    add(p + "self_attn.k_proj.weight", {kv, h});
    add(p + "self_attn.v_proj.weight", {kv, h});
    add(p + "self_attn.o_proj.weight", {h, q});
    if (c.attention_bias) {
      add(p + "self_attn.q_proj.bias", {q});
      add(p + "self_attn.k_proj.bias", {kv});
      add(p + "self_attn.v_proj.bias", {kv});
    }
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {c.head_dim});
      add(p + "self_attn.k_norm.weight", {c.head_dim});
    }
    add(p + "mlp.gate_proj.weight", {i, h});
    add(p + "mlp.up_proj.weight", {i, h});
    add(p + "mlp.down_proj.weight", {h, i});
  }
  std::map<std::string, uint32_t> seeds;
  for (size_t n = 0; n < specs.size(); ++n)
    seeds[specs[n].name] = seed + uint32_t(n) * 7919u;
  write_safetensors(dir / "model.safetensors", specs, [&](const tensor_spec& spec, float* out) {
    std::mt19937 rng(seeds[spec.name]);
    const bool norm = spec.name.find("norm") != std::string::npos;
    const bool bias = spec.name.find("bias") != std::string::npos;
    std::normal_distribution<float> d(norm ? 1.0f : 0.0f, norm ? 0.1f : bias ? 0.1f : 0.08f);
    for (int64_t k = 0; k < spec.numel(); ++k)
      out[k] = d(rng);
  });
}

/// Runs sequences through a backend: each prompt is prefilled in chunks of at most `chunk`
/// tokens (all sequences' chunks in one step), then `steps` decode steps for all sequences
/// together. With `forced`, the tokens fed back are forced[seq][step] instead of the sampled
/// ones (teacher forcing, so two backends see the same inputs).
struct generation {
  std::vector<std::vector<int32_t>> tokens;        // [seq][step] sampled
  std::vector<std::vector<std::vector<float>>> logits; // [seq][step][vocab]
};

inline generation generate(backend& b, const std::vector<std::vector<int32_t>>& prompts, int steps, int32_t chunk,
                           const std::vector<sampling_params>& params,
                           const std::vector<std::vector<int32_t>>* forced = nullptr, int32_t first_block = 0) {
  const int32_t bs = b.kv_shape().block_size;
  const size_t n = prompts.size();
  std::vector<std::vector<int32_t>> seq_tokens = prompts;
  std::vector<int32_t> computed(n, 0);
  std::vector<std::vector<int32_t>> tables(n);
  std::vector<sequence_sampling_state> states(n);
  int32_t next_block = first_block;
  for (size_t s = 0; s < n; ++s) {
    states[s].params = params[s % params.size()];
    states[s].prompt_token_ids = prompts[s];
  }
  generation g;
  g.tokens.resize(n);
  g.logits.resize(n);
  const int64_t vocab = b.config().vocab_size;
  auto run = [&](const std::vector<size_t>& which, const std::vector<int32_t>& lengths) {
    step_batch step;
    std::vector<const sequence_sampling_state*> sampling;
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t s = which[j];
      step_sequence seq;
      seq.seq_id = s;
      seq.num_computed_tokens = computed[s];
      seq.num_new_tokens = lengths[j];
      seq.needs_logits = computed[s] + lengths[j] == int32_t(seq_tokens[s].size());
      while (int32_t(tables[s].size()) * bs < seq.context_len())
        tables[s].push_back(next_block++);
      seq.block_table = tables[s];
      step.add(seq, seq_tokens[s].data() + computed[s]);
      if (seq.needs_logits)
        sampling.push_back(&states[s]);
    }
    std::vector<sampled_token> out;
    std::vector<float> logits;
    b.execute(step, sampling, out, &logits);
    size_t k = 0;
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t s = which[j];
      computed[s] += lengths[j];
      if (computed[s] != int32_t(seq_tokens[s].size()))
        continue;
      const int32_t token = out[k].token;
      g.tokens[s].push_back(token);
      g.logits[s].emplace_back(logits.begin() + int64_t(k) * vocab, logits.begin() + int64_t(k + 1) * vocab);
      const size_t step_index = g.tokens[s].size() - 1;
      const int32_t fed = forced ? (*forced)[s][step_index] : token;
      states[s].output_token_ids.push_back(token);
      seq_tokens[s].push_back(fed);
      ++k;
    }
  };
  // Prefill in chunks, all sequences together.
  for (bool pending = true; pending;) {
    pending = false;
    std::vector<size_t> which;
    std::vector<int32_t> lengths;
    for (size_t s = 0; s < n; ++s) {
      const int32_t left = int32_t(prompts[s].size()) - computed[s];
      if (left > 0) {
        which.push_back(s);
        lengths.push_back(std::min(left, chunk));
        pending = pending || left > chunk;
      }
    }
    if (!which.empty())
      run(which, lengths);
  }
  for (int step = 1; step < steps; ++step) {
    std::vector<size_t> which(n);
    for (size_t s = 0; s < n; ++s)
      which[s] = s;
    run(which, std::vector<int32_t>(n, 1));
  }
  return g;
}

} // namespace actorserve::gpu::testing
