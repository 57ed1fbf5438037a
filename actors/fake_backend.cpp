#include "actors/fake_backend.hpp"

#include "model/error.hpp"

#include <xxhash.h>

#include <stdexcept>
#include <string>
#include <thread>

namespace actorserve {

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct slot {
  int32_t token = -1;
  int32_t position = -1; // -1: never written
};

class fake_backend final : public backend {
public:
  explicit fake_backend(const fake_backend_options& o) : o_(o) {
    config_.architecture = "FakeForCausalLM";
    config_.vocab_size = o.vocab_size;
    config_.max_position_embeddings = o.max_position_embeddings;
    config_.eos_token_ids = o.eos_token_ids;
    config_.hidden_size = 8;
    config_.num_hidden_layers = 1;
    config_.num_attention_heads = 1;
    config_.num_key_value_heads = 1;
    config_.head_dim = 8;
    cache_.resize(size_t(o.num_blocks) * o.block_size);
    host_.resize(size_t(o.num_host_blocks) * o.block_size);
  }

  const model_config& config() const override { return config_; }
  kv_cache_shape kv_shape() const override { return {o_.num_blocks, o_.num_host_blocks, o_.block_size}; }
  std::string name() const override { return "fake"; }

  void execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
               std::vector<sampled_token>& out, std::vector<float>* logits_out) override {
    if (std::string problem = step.validate(o_.block_size, o_.num_blocks); !problem.empty())
      throw model_error("fake backend: invalid step: " + problem);
    if (o_.step_delay.count() > 0)
      std::this_thread::sleep_for(o_.step_delay);
    for (int32_t t : step.token_ids)
      if (t == o_.fail_on_token)
        throw model_error("fake backend: injected failure on token " + std::to_string(t));
    const int32_t bs = o_.block_size;
    size_t offset = 0;
    size_t k = 0;
    std::vector<float> logits(size_t(o_.vocab_size));
    out.clear();
    for (const auto& s : step.seqs) {
      for (int32_t i = 0; i < s.num_new_tokens; ++i) {
        int32_t pos = s.num_computed_tokens + i;
        slot& sl = cache_[size_t(s.block_table[size_t(pos / bs)]) * bs + pos % bs];
        sl.token = step.token_ids[offset + size_t(i)];
        sl.position = pos;
      }
      offset += size_t(s.num_new_tokens);
      if (!s.needs_logits)
        continue;
      // The "forward pass": a hash of the whole context as read back from the cache.
      uint64_t h = 0;
      for (int32_t pos = 0; pos < s.context_len(); ++pos) {
        const slot& sl = cache_[size_t(s.block_table[size_t(pos / bs)]) * bs + pos % bs];
        if (sl.position != pos)
          throw std::logic_error("fake backend: sequence " + std::to_string(s.seq_id) + " reads position " +
                                 std::to_string(pos) + " from a slot holding position " + std::to_string(sl.position));
        h = mix(h ^ (uint64_t(uint32_t(sl.token)) << 20) ^ uint64_t(pos));
      }
      for (int32_t v = 0; v < o_.vocab_size; ++v)
        logits[size_t(v)] = float(double(mix(h ^ (uint64_t(v) * 0x51afd7ed558ccd1dull)) >> 11) * 0x1.0p-53 * 8.0 - 4.0);
      for (int64_t eos : o_.eos_token_ids)
        if (eos >= 0 && eos < o_.vocab_size)
          logits[size_t(eos)] += o_.eos_logit_bias;
      if (logits_out)
        logits_out->insert(logits_out->end(), logits.begin(), logits.end());
      out.push_back(sample_token(logits.data(), o_.vocab_size, *sampling.at(k++)));
    }
  }

  void copy_blocks(const std::vector<block_copy>& copies) override { move(copies, cache_, cache_); }
  void swap_out(const std::vector<block_copy>& copies) override { move(copies, cache_, host_); }
  void swap_in(const std::vector<block_copy>& copies) override { move(copies, host_, cache_); }

private:
  void move(const std::vector<block_copy>& copies, const std::vector<slot>& from, std::vector<slot>& to) {
    const size_t bs = size_t(o_.block_size);
    for (const auto& c : copies) {
      if (c.src < 0 || size_t(c.src + 1) * bs > from.size() || c.dst < 0 || size_t(c.dst + 1) * bs > to.size())
        throw model_error("fake backend: block copy " + std::to_string(c.src) + " -> " + std::to_string(c.dst) +
                          " out of range");
      std::copy(from.begin() + c.src * bs, from.begin() + (c.src + 1) * bs, to.begin() + c.dst * bs);
    }
  }

  fake_backend_options o_;
  model_config config_;
  std::vector<slot> cache_; // [num_blocks * block_size]
  std::vector<slot> host_;  // [num_host_blocks * block_size]
};

} // namespace

std::unique_ptr<backend> make_fake_backend(const fake_backend_options& options) {
  if (options.vocab_size < 2 || options.num_blocks < 1 || options.block_size < 1 || options.num_host_blocks < 0)
    throw model_error("fake backend: invalid options");
  return std::make_unique<fake_backend>(options);
}

} // namespace actorserve
