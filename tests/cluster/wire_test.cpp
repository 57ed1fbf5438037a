// The cluster's wire documents: round trips (non-finite floats included) and refusal of
// malformed, truncated, mistyped and wrong-version documents.
#include "actors/cluster/wire.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace actorserve;
using namespace actorserve::cluster;

TEST_CASE("forward and output documents round-trip, -inf and NaN included", "[cluster][wire]") {
  forward_msg f;
  f.origin_id = 42, f.attempt = 3;
  f.request.prompt_token_ids = {1, 2, 3};
  f.request.sampling.temperature = 0.7f;
  f.request.sampling.seed = 99;
  f.request.has_seed = true;
  f.request.max_tokens = 17;
  f.request.stop = {"\n\n"};
  f.request.deadline = engine_clock::now() + std::chrono::seconds(10);
  f.request.resume_output_token_ids = {9, 8, 7, 6};
  forward_msg g;
  decode(encode(f), g);
  CHECK(g.origin_id == 42);
  CHECK(g.attempt == 3);
  CHECK(g.request.prompt_token_ids == f.request.prompt_token_ids);
  CHECK(g.request.sampling.temperature == 0.7f);
  CHECK(g.request.sampling.seed == 99);
  CHECK(g.request.has_seed);
  CHECK(g.request.max_tokens == 17);
  CHECK(g.request.stop == f.request.stop);
  CHECK(g.request.resume_output_token_ids == f.request.resume_output_token_ids);
  CHECK(g.request.deadline > engine_clock::now() + std::chrono::seconds(8));
  CHECK(g.request.deadline < engine_clock::now() + std::chrono::seconds(11));

  output_msg o;
  o.origin_id = 7;
  o.output.finished = true;
  o.output.error = engine_errc::deadline_exceeded;
  choice_delta d;
  d.token_ids = {5, 6};
  d.text = "hi";
  d.finish = finish_reason::stop;
  token_logprob lp;
  lp.token = 5;
  lp.logprob = -std::numeric_limits<float>::infinity();
  lp.top = {{5, std::nanf("")}, {6, -1.5f}};
  d.logprobs.push_back(lp);
  o.output.choices.push_back(d);
  o.output.usage = {3, 2};
  output_msg p;
  decode(encode(o), p);
  REQUIRE(p.output.choices.size() == 1);
  CHECK(p.output.choices[0].token_ids == d.token_ids);
  CHECK(p.output.choices[0].text == "hi");
  CHECK(p.output.choices[0].finish == finish_reason::stop);
  CHECK(std::isinf(p.output.choices[0].logprobs[0].logprob));
  CHECK(std::isnan(p.output.choices[0].logprobs[0].top[0].second));
  CHECK(p.output.choices[0].logprobs[0].top[1].second == -1.5f);
  CHECK(p.output.error == engine_errc::deadline_exceeded);
  CHECK(p.output.usage.completion_tokens == 2);
}

TEST_CASE("malformed, truncated and mistyped documents are refused", "[cluster][wire]") {
  forward_msg f;
  f.request.prompt_token_ids = {1, 2, 3};
  const std::string good = encode(f);
  forward_msg out;
  for (size_t cut = 0; cut < good.size(); ++cut)
    CHECK_THROWS_AS(decode(good.substr(0, cut), out), wire_error);
  CHECK_THROWS_AS(decode(good + "x", out), wire_error);
  CHECK_THROWS_AS(decode(std::string("\xc1\xc1\xc1", 3), out), wire_error);
  CHECK_THROWS_AS(decode("garbage that is not msgpack", out), wire_error);
  // Another kind of document is not a forward.
  CHECK_THROWS_AS(decode(encode(cancel_msg{1, 1}), out), wire_error);
  // Flipping every byte in turn never crashes; it either decodes or throws wire_error.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = char(bad[i] ^ 0x5a);
    try {
      decode(bad, out);
    } catch (const wire_error&) {
    }
  }
  // Enums out of range.
  output_msg o;
  choice_delta d;
  d.finish = finish_reason(77);
  o.output.choices.push_back(d);
  output_msg p;
  CHECK_THROWS_AS(decode(encode(o), p), wire_error);
}

TEST_CASE("hello carries its version, other documents must match this node's", "[cluster][wire]") {
  hello_msg h;
  h.version = protocol_version + 1;
  h.name = "n1";
  h.incarnation = 5;
  hello_msg g;
  decode(encode(h), g); // the node decides (and logs) about the version
  CHECK(g.version == protocol_version + 1);
  CHECK(g.name == "n1");
  CHECK(g.incarnation == 5);
  CHECK(peek_version(encode(h)) == protocol_version + 1);
  hello_msg nameless;
  CHECK_THROWS_AS(decode(encode(nameless), g), wire_error);
}

TEST_CASE("migrate carries its target node", "[cluster][wire]") {
  migrate_msg m{5, 2, 0};
  m.to = "node-c";
  migrate_msg back;
  decode(encode(m), back);
  CHECK(back.origin_id == 5);
  CHECK(back.attempt == 2);
  CHECK(back.to == "node-c");
  std::string cut = encode(m);
  cut.pop_back();
  CHECK_THROWS_AS(decode(cut, back), wire_error);
}
