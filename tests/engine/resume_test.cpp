// Resuming a request from its delivered output (generate_request::resume_output_token_ids), as
// the cluster does after a failover or a migration by recomputation: the resumed request's
// stream must be exactly the tail of the uninterrupted one, with seeded sampling, penalties,
// min_tokens, stop token ids and stop strings (text held back for a partial stop string
// included), and usage counting the resumed tokens.
#include "engine_helpers.hpp"

using namespace actorserve;
using namespace actorserve::testing;

namespace {

std::string text_of(const std::vector<int32_t>& ids, size_t count) {
  std::string s;
  for (size_t i = 0; i < count; ++i)
    s += "<" + std::to_string(ids[i]) + ">";
  return s;
}

generate_request resumed(const generate_request& r, uint64_t id, const std::vector<int32_t>& full, size_t k) {
  generate_request x = r;
  x.id = id;
  x.resume_output_token_ids.assign(full.begin(), full.begin() + std::ptrdiff_t(k));
  return x;
}

} // namespace

TEST_CASE("a resumed seeded request with penalties continues exactly as the uninterrupted one", "[engine][resume]") {
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  auto r = request_of(1, prompt_of(7, 4), 24, 0.9f, 77);
  r.sampling.repetition_penalty = 1.3f;
  r.sampling.presence_penalty = 0.5f;
  r.sampling.frequency_penalty = 0.4f;
  r.sampling.top_k = 20;
  auto full = run_all(*e, {r})[1];
  REQUIRE(full.tokens[0].size() == 24);
  // Without the history the continuation differs (the test would prove nothing otherwise).
  {
    auto plain = request_of(2, r.prompt_token_ids, 24, 0.9f, 77);
    plain.sampling = r.sampling;
    plain.prompt_token_ids.insert(plain.prompt_token_ids.end(), full.tokens[0].begin(), full.tokens[0].begin() + 8);
    plain.max_tokens = 16;
    auto naive = run_all(*e, {plain})[2];
    CHECK(naive.tokens[0] != std::vector<int32_t>(full.tokens[0].begin() + 8, full.tokens[0].end()));
  }
  uint64_t id = 10;
  for (size_t k : {size_t(1), size_t(5), size_t(8), size_t(17), size_t(23)}) {
    INFO("resumed after " << k << " tokens");
    auto got = run_all(*e, {resumed(r, id, full.tokens[0], k)})[id];
    ++id;
    CHECK(got.error == engine_errc::none);
    CHECK(got.tokens[0] == std::vector<int32_t>(full.tokens[0].begin() + std::ptrdiff_t(k), full.tokens[0].end()));
    CHECK(got.finish[0] == finish_reason::length);
    CHECK(got.usage.completion_tokens == 24); // the resumed tokens count
    CHECK(got.usage.prompt_tokens == int32_t(r.prompt_token_ids.size()));
  }
}

TEST_CASE("a resumed request counts its history for min_tokens and stop token ids", "[engine][resume]") {
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  auto probe = request_of(1, prompt_of(5, 9), 40, 0.7f, 5);
  auto free_run = run_all(*e, {probe})[1];
  // An early token becomes a stop token id that min_tokens must ignore at its first occurrence.
  const int32_t stop_token = free_run.tokens[0][3];
  auto r = probe;
  r.id = 2;
  r.stop_token_ids = {stop_token};
  r.min_tokens = 12;
  auto full = run_all(*e, {r})[2];
  const auto& ids = full.tokens[0];
  REQUIRE(ids.size() >= 13);
  uint64_t id = 20;
  for (size_t k = 1; k < ids.size(); k += 2) {
    INFO("resumed after " << k << " tokens");
    auto got = run_all(*e, {resumed(r, id, ids, k)})[id];
    ++id;
    CHECK(got.tokens[0] == std::vector<int32_t>(ids.begin() + std::ptrdiff_t(k), ids.end()));
    CHECK(got.finish[0] == full.finish[0]);
  }
}

TEST_CASE("a resumed request's stop strings see the resumed text, and held-back text is emitted", "[engine][resume]") {
  auto detok = std::make_shared<id_detokenizer>();
  auto e = engine::start(small_config(), fake_factory(fake_options()), detok);
  auto r = request_of(1, prompt_of(6, 2), 30, 0.8f, 3);
  auto plain = run_all(*e, {r})[1];
  const auto& ids = plain.tokens[0];
  REQUIRE(ids.size() == 30);
  SECTION("a stop string spanning the resume point") {
    // Stop at tokens 9 and 10 together: resumed after token 9, the match needs the old text.
    auto s = r;
    s.stop = {"<" + std::to_string(ids[9]) + "><" + std::to_string(ids[10]) + ">"};
    auto full = run_all(*e, {s})[1];
    REQUIRE(full.finish[0] == finish_reason::stop);
    // The stop string ends in the last token's text and starts in the one before: resume there.
    const auto& fids = full.tokens[0];
    REQUIRE(fids.size() >= 2);
    const size_t k = fids.size() - 1;
    auto got = run_all(*e, {resumed(s, 2, fids, k)})[2];
    CHECK(got.finish[0] == finish_reason::stop);
    CHECK(got.tokens[0] == std::vector<int32_t>{fids.back()});
    // The old run held token k-1's text back (a partial match), and the match cuts it: nothing new.
    CHECK(got.text[0].empty());
    CHECK(full.text[0] == text_of(fids, k - 1));
  }
  SECTION("text held back for a partial stop string that did not match") {
    // After token 9 the text ends with a proper prefix of the stop string, so the old run held
    // it back; the stop string does not match at token 10, so the resumed run must emit it.
    auto s = r;
    s.stop = {"<" + std::to_string(ids[9]) + "><" + std::to_string(ids[10]) + "x"};
    auto full = run_all(*e, {s})[1];
    REQUIRE(full.text[0] == plain.text[0]);
    auto got = run_all(*e, {resumed(s, 2, ids, 10)})[2];
    CHECK(got.tokens[0] == std::vector<int32_t>(ids.begin() + 10, ids.end()));
    CHECK(got.text[0] == plain.text[0].substr(text_of(ids, 9).size())); // starts with token 9's text
  }
}

TEST_CASE("resume_output_token_ids is validated", "[engine][resume]") {
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  output_queue q;
  auto r = request_of(0, prompt_of(5, 1), 4, 0.5f, 1);
  SECTION("n > 1") {
    r.n = 2;
    r.resume_output_token_ids = {3};
    auto res = e->submit(r, q.sink());
    CHECK(res.error == engine_errc::invalid_request);
    CHECK(res.message.find("n == 1") != std::string::npos);
  }
  SECTION("nothing left to generate") {
    r.resume_output_token_ids = {3, 4, 5, 6};
    auto res = e->submit(r, q.sink());
    CHECK(res.error == engine_errc::invalid_request);
    CHECK(res.message.find("max_tokens") != std::string::npos);
  }
  SECTION("a token outside the vocabulary") {
    r.resume_output_token_ids = {3, 9999};
    auto res = e->submit(r, q.sink());
    CHECK(res.error == engine_errc::invalid_request);
  }
}
