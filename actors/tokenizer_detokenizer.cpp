#include "actors/tokenizer_detokenizer.hpp"

#include "model/tokenizer/incremental_detokenizer.hpp"

namespace actorserve {

namespace {

class tokenizer_stream final : public detokenizer_stream {
public:
  tokenizer_stream(const tokenizer& tok, bool skip_special_tokens, std::span<const uint32_t> prompt_ids)
      : inner_(tok, skip_special_tokens, prompt_ids) {}
  std::string add(int32_t token_id) override { return token_id < 0 ? std::string{} : inner_.add(uint32_t(token_id)); }
  std::string finish() override { return inner_.finish(); }

private:
  incremental_detokenizer inner_;
};

class tokenizer_detokenizer final : public detokenizer {
public:
  explicit tokenizer_detokenizer(tokenizer tok) : tok_(std::move(tok)) {}
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    return tok_.decode(ids, skip_special_tokens);
  }
  std::unique_ptr<detokenizer_stream> stream(std::span<const int32_t> prompt_ids,
                                             bool skip_special_tokens) const override {
    std::vector<uint32_t> prompt;
    prompt.reserve(prompt_ids.size());
    for (int32_t id : prompt_ids)
      if (id >= 0)
        prompt.push_back(uint32_t(id));
    return std::make_unique<tokenizer_stream>(tok_, skip_special_tokens, prompt);
  }

private:
  tokenizer tok_;
};

} // namespace

std::shared_ptr<const detokenizer> make_detokenizer(tokenizer tok) {
  return std::make_shared<tokenizer_detokenizer>(std::move(tok));
}

} // namespace actorserve
