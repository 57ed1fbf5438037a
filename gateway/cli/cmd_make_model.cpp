// `actorserve make-model`: writes a random-weight model in the Hugging Face layout
// (model/make_model.hpp). A preset gives the shapes; every flag given overrides it.
#include "gateway/cli/command.hpp"
#include "gateway/text_frontend.hpp"

#include "model/error.hpp"
#include "model/make_model.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <chrono>
#include <cstdio>
#include <memory>

namespace actorserve::cli {
namespace {

struct make_model_args {
  std::string preset;
  std::string arch;
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, intermediate = 0, vocab = 0, head_dim = 0;
  int64_t max_position = 0;
  double rope_theta = 0.0;
  uint64_t seed = 0;
  std::string dtype_name = "bf16";
  std::string out;
  std::string tokenizer;
  bool tie_word_embeddings = false;
  uint64_t shard_size_mb = 4096;
  int threads = 2;
  bool quiet = false;
  // Which options were given, so that only those override the preset.
  CLI::Option *hidden_opt, *layers_opt, *heads_opt, *kv_heads_opt, *intermediate_opt, *vocab_opt, *head_dim_opt,
      *max_position_opt, *rope_theta_opt, *arch_opt;
};

model_arch parse_arch(const std::string& name) {
  for (model_arch a : {model_arch::llama, model_arch::qwen2, model_arch::qwen3, model_arch::mistral})
    if (arch_name(a) == name)
      return a;
  throw model_error("--arch: unknown architecture '" + name + "'");
}

int run_make_model(const make_model_args& a) {
  make_model_options o;
  model_config& c = o.config;
  if (!a.preset.empty()) {
    c = model_preset(a.preset);
    o.vocab_from_preset = !a.vocab_opt->count();
  } else {
    c.max_position_embeddings = 2048;
    c.rms_norm_eps = 1e-5;
    for (auto* opt : {a.hidden_opt, a.layers_opt, a.heads_opt, a.intermediate_opt})
      if (!opt->count())
        throw model_error(opt->get_name() + " is required without --preset");
  }
  if (a.arch_opt->count())
    c.arch = parse_arch(a.arch);
  auto set = [](CLI::Option* opt, int64_t value, int64_t& field) {
    if (opt->count())
      field = value;
  };
  set(a.hidden_opt, a.hidden, c.hidden_size);
  set(a.layers_opt, a.layers, c.num_hidden_layers);
  set(a.heads_opt, a.heads, c.num_attention_heads);
  set(a.kv_heads_opt, a.kv_heads, c.num_key_value_heads);
  set(a.intermediate_opt, a.intermediate, c.intermediate_size);
  set(a.vocab_opt, a.vocab, c.vocab_size);
  set(a.max_position_opt, a.max_position, c.max_position_embeddings);
  // hidden / heads unless given: a preset's head_dim does not survive a change of shape.
  c.head_dim = a.head_dim_opt->count() ? a.head_dim : 0;
  if (a.rope_theta_opt->count())
    c.rope_theta = a.rope_theta;
  if (a.tie_word_embeddings)
    c.tie_word_embeddings = true;

  o.weight_type = a.dtype_name == "f32" ? dtype::f32 : a.dtype_name == "f16" ? dtype::f16 : dtype::bf16;
  o.seed = a.seed;
  o.tokenizer_dir = a.tokenizer;
  o.shard_size_bytes = a.shard_size_mb << 20;
  o.num_threads = a.threads;
  o.show_progress = !a.quiet;

  auto start = std::chrono::steady_clock::now();
  const make_model_result r = make_model(a.out, o);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "make-model: wrote %s: %s, %.1fM parameters, %.1f MB %s in %zu file%s, %.2f s\n", a.out.c_str(),
               std::string(arch_name(r.config.arch)).c_str(), double(r.num_parameters) / 1e6,
               double(r.weight_bytes) / 1e6, a.dtype_name.c_str(), r.files.size(), r.files.size() == 1 ? "" : "s",
               seconds);
  const std::string w = gateway::vocabulary_coverage_warning(
      int64_t(tokenizer::from_dir(a.out).vocab_size()), r.config.vocab_size);
  if (!w.empty())
    std::fprintf(stderr, "make-model: warning: %s; pass --tokenizer <folder> to write a real one\n", w.c_str());
  return 0;
}

const command_registrar registrar{
    "make-model", "Write a random-weight model (Hugging Face layout, deterministic from --seed)",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<make_model_args>();
      app.add_option("--out", a->out, "output folder")->required();
      app.add_option("--preset", a->preset, "shapes to start from")->check(CLI::IsMember({"tiny", "llama3-8b", "qwen2.5-7b"}));
      a->arch_opt = app.add_option("--arch", a->arch, "architecture (default: the preset's, else llama)")
                        ->check(CLI::IsMember({"llama", "qwen2", "qwen3", "mistral"}));
      a->hidden_opt = app.add_option("--hidden", a->hidden, "hidden size")->check(CLI::PositiveNumber);
      a->layers_opt = app.add_option("--layers", a->layers, "decoder layers")->check(CLI::PositiveNumber);
      a->heads_opt = app.add_option("--heads", a->heads, "attention heads")->check(CLI::PositiveNumber);
      a->kv_heads_opt = app.add_option("--kv-heads", a->kv_heads, "key/value heads (GQA; default: --heads)")->check(CLI::PositiveNumber);
      a->intermediate_opt = app.add_option("--intermediate", a->intermediate, "MLP size")->check(CLI::PositiveNumber);
      a->vocab_opt = app.add_option("--vocab", a->vocab, "vocabulary rows (default: fitted to the tokenizer)")->check(CLI::PositiveNumber);
      a->head_dim_opt = app.add_option("--head-dim", a->head_dim, "head size (default: hidden / heads)")->check(CLI::PositiveNumber);
      a->max_position_opt = app.add_option("--max-position", a->max_position, "max_position_embeddings (default 2048)")->check(CLI::PositiveNumber);
      a->rope_theta_opt = app.add_option("--rope-theta", a->rope_theta, "RoPE base (default 10000)")->check(CLI::PositiveNumber);
      app.add_option("--seed", a->seed, "random seed: the same seed and options give the same bytes")->capture_default_str();
      app.add_option("--dtype", a->dtype_name, "weight type")->capture_default_str()->check(CLI::IsMember({"bf16", "f16", "f32"}));
      app.add_option("--tokenizer", a->tokenizer, "copy tokenizer files from this folder and fit the vocabulary to them")
          ->check(CLI::ExistingDirectory);
      app.add_flag("--tie-word-embeddings", a->tie_word_embeddings, "share embed_tokens with the output layer");
      app.add_option("--shard-size-mb", a->shard_size_mb, "shard the weights above this size")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--threads", a->threads, "threads generating values")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_flag("--quiet", a->quiet, "no progress lines");
      return [a] { return run_make_model(*a); };
    }};

} // namespace
} // namespace actorserve::cli
