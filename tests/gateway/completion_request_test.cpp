// /v1/completions bodies: every prompt form, every parameter, every bad input.
#include "request_test_helpers.hpp"

#include <catch2/catch.hpp>

using namespace actorserve::gateway;
using namespace actorserve::gateway::test;

namespace {
completion_request parse(const std::string& body) { return parse_completion_request(parse_json_body(body), limits()); }

void require_error(const std::string& body, int status, const std::string& param, const std::string& code = {}) {
  auto e = completion_error(body);
  INFO(body);
  REQUIRE(e.has_value());
  CHECK(e->status == status);
  CHECK(e->param == param);
  if (!code.empty())
    CHECK(e->code == code);
  CHECK(!e->message.empty());
}
} // namespace

TEST_CASE("completions: the four prompt forms", "[gateway][request]") {
  auto text = parse(R"({"model":"tiny","prompt":"hello"})");
  REQUIRE(text.prompts.size() == 1);
  CHECK_FALSE(text.prompts[0].is_tokens);
  CHECK(text.prompts[0].text == "hello");

  auto texts = parse(R"({"model":"tiny","prompt":["a","b","c"]})");
  REQUIRE(texts.prompts.size() == 3);
  CHECK(texts.prompts[2].text == "c");

  auto ids = parse(R"({"model":"tiny","prompt":[1,2,999]})");
  REQUIRE(ids.prompts.size() == 1);
  CHECK(ids.prompts[0].is_tokens);
  CHECK(ids.prompts[0].token_ids == std::vector<int32_t>{1, 2, 999});

  auto id_lists = parse(R"({"model":"tiny","prompt":[[1,2],[3]]})");
  REQUIRE(id_lists.prompts.size() == 2);
  CHECK(id_lists.prompts[1].token_ids == std::vector<int32_t>{3});
}

TEST_CASE("completions: defaults follow OpenAI", "[gateway][request]") {
  auto r = parse(R"({"model":"tiny","prompt":"x"})");
  CHECK(r.params.model == "tiny");
  CHECK(r.params.max_tokens == 16); // the completions API's documented default
  CHECK(r.params.n == 1);
  CHECK_FALSE(r.params.stream);
  CHECK(r.params.sampling.temperature == 1.0f);
  CHECK(r.params.sampling.logprobs == -1);
  CHECK_FALSE(r.params.has_seed);
  CHECK_FALSE(r.echo);
  // An explicit null means "as many as the context leaves".
  CHECK_FALSE(parse(R"({"prompt":"x","max_tokens":null})").params.max_tokens.has_value());
  // Without a model the first served name is used (as vLLM does).
  CHECK(parse(R"({"prompt":"x"})").params.model == "tiny");
  CHECK(parse(R"({"model":"tiny-alias","prompt":"x"})").params.model == "tiny-alias");
}

TEST_CASE("completions: every parameter lands in the native struct", "[gateway][request]") {
  auto r = parse(R"({"model":"tiny","prompt":"x","max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":40,
    "min_p":0.05,"seed":-3,"stop":["\n","END"],"n":3,"logprobs":2,"presence_penalty":0.5,
    "frequency_penalty":-0.5,"repetition_penalty":1.1,"ignore_eos":true,"user":"u1","stream":true,
    "stream_options":{"include_usage":true},"echo":true,"min_tokens":2,"stop_token_ids":[5,6],
    "skip_special_tokens":false,"include_stop_str_in_output":true,"best_of":3,"logit_bias":{}})");
  const auto& p = r.params;
  CHECK(p.max_tokens == 7);
  CHECK(p.sampling.temperature == Approx(0.5));
  CHECK(p.sampling.top_p == Approx(0.9));
  CHECK(p.sampling.top_k == 40);
  CHECK(p.sampling.min_p == Approx(0.05));
  CHECK(p.has_seed);
  CHECK(p.sampling.seed == uint64_t(int64_t(-3)));
  CHECK(p.stop == std::vector<std::string>{"\n", "END"});
  CHECK(p.n == 3);
  CHECK(p.sampling.logprobs == 2);
  CHECK(p.sampling.presence_penalty == Approx(0.5));
  CHECK(p.sampling.frequency_penalty == Approx(-0.5));
  CHECK(p.sampling.repetition_penalty == Approx(1.1));
  CHECK(p.ignore_eos);
  CHECK(p.user == "u1");
  CHECK(p.stream);
  CHECK(p.include_usage);
  CHECK(r.echo);
  CHECK(p.min_tokens == 2);
  CHECK(p.stop_token_ids == std::vector<int32_t>{5, 6});
  CHECK_FALSE(p.skip_special_tokens);
  CHECK(p.include_stop_str_in_output);
  CHECK(parse(R"({"prompt":"x","stop":"##"})").params.stop == std::vector<std::string>{"##"});
  CHECK(parse(R"({"prompt":"x","seed":18446744073709551615})").params.sampling.seed == 18446744073709551615ull);
  CHECK(parse(R"({"prompt":"x","max_tokens":5.0})").params.max_tokens == 5); // integral decimals are integers
}

TEST_CASE("completions: malformed JSON and non-objects", "[gateway][request]") {
  require_error(R"({"prompt": "x",)", 400, "", "invalid_json");
  require_error("", 400, "", "invalid_json");
  require_error(R"(["prompt"])", 400, "");
  require_error("\"just a string\"", 400, "");
  auto bad_utf8 = completion_error("{\"prompt\": \"\xff\xfe\"}");
  REQUIRE(bad_utf8);
  CHECK(bad_utf8->status == 400);
  CHECK(bad_utf8->code == "invalid_utf8");
  // A truncated multi-byte sequence inside a string.
  CHECK(completion_error("{\"prompt\": \"caf\xc3\"}")->code == "invalid_utf8");
}

TEST_CASE("completions: missing and wrongly typed fields", "[gateway][request]") {
  require_error(R"({"model":"tiny"})", 400, "prompt", "missing_required_parameter");
  require_error(R"({"model":"tiny","prompt":null})", 400, "prompt", "missing_required_parameter");
  require_error(R"({"prompt":5})", 400, "prompt", "invalid_type");
  require_error(R"({"prompt":{}})", 400, "prompt", "invalid_type");
  require_error(R"({"prompt":[]})", 400, "prompt", "empty_array");
  require_error(R"({"prompt":[[]]})", 400, "prompt[0]", "empty_array");
  require_error(R"({"prompt":["a",1]})", 400, "prompt[1]", "invalid_type");
  require_error(R"({"prompt":[[1],"a"]})", 400, "prompt[1]", "invalid_type");
  require_error(R"({"prompt":[1,"a"]})", 400, "prompt[1]", "invalid_type");
  require_error(R"({"prompt":[1.5]})", 400, "prompt[0]", "invalid_type");
  require_error(R"({"prompt":"x","model":7})", 400, "model", "invalid_type");
  require_error(R"({"prompt":"x","max_tokens":"10"})", 400, "max_tokens", "invalid_type");
  require_error(R"({"prompt":"x","max_tokens":2.5})", 400, "max_tokens", "invalid_type");
  require_error(R"({"prompt":"x","temperature":"hot"})", 400, "temperature", "invalid_type");
  require_error(R"({"prompt":"x","stream":"yes"})", 400, "stream", "invalid_type");
  require_error(R"({"prompt":"x","stop":5})", 400, "stop", "invalid_type");
  require_error(R"({"prompt":"x","stop":["a",5]})", 400, "stop[1]", "invalid_type");
  require_error(R"({"prompt":"x","seed":"1"})", 400, "seed", "invalid_type");
  require_error(R"({"prompt":"x","user":1})", 400, "user", "invalid_type");
  require_error(R"({"prompt":"x","logprobs":true})", 400, "logprobs", "invalid_type");
  require_error(R"({"prompt":"x","stream":true,"stream_options":[]})", 400, "stream_options", "invalid_type");
  require_error(R"({"prompt":"x","stream":true,"stream_options":{"include_usage":1}})", 400,
                "stream_options.include_usage", "invalid_type");
}

TEST_CASE("completions: unknown model is a 404", "[gateway][request]") {
  auto e = completion_error(R"({"model":"gpt-4","prompt":"x"})");
  REQUIRE(e);
  CHECK(e->status == 404);
  CHECK(e->code == "model_not_found");
  CHECK(e->param == "model");
  CHECK(e->message.find("gpt-4") != std::string::npos);
}

TEST_CASE("completions: values out of OpenAI's ranges", "[gateway][request]") {
  require_error(R"({"prompt":"x","max_tokens":0})", 400, "max_tokens", "integer_below_min_value");
  require_error(R"({"prompt":"x","max_tokens":-5})", 400, "max_tokens", "integer_below_min_value");
  require_error(R"({"prompt":"x","max_tokens":4294967296})", 400, "max_tokens", "integer_above_max_value");
  require_error(R"({"prompt":"x","n":0})", 400, "n", "integer_below_min_value");
  require_error(R"({"prompt":"x","n":129})", 400, "n", "integer_above_max_value");
  require_error(R"({"prompt":"x","temperature":-0.1})", 400, "temperature", "decimal_below_min_value");
  require_error(R"({"prompt":"x","temperature":2.5})", 400, "temperature", "decimal_above_max_value");
  require_error(R"({"prompt":"x","top_p":0})", 400, "top_p", "decimal_below_min_value");
  require_error(R"({"prompt":"x","top_p":1.01})", 400, "top_p", "decimal_above_max_value");
  require_error(R"({"prompt":"x","top_k":-2})", 400, "top_k", "integer_below_min_value");
  require_error(R"({"prompt":"x","min_p":1.5})", 400, "min_p", "decimal_above_max_value");
  require_error(R"({"prompt":"x","presence_penalty":2.1})", 400, "presence_penalty", "decimal_above_max_value");
  require_error(R"({"prompt":"x","frequency_penalty":-2.1})", 400, "frequency_penalty", "decimal_below_min_value");
  require_error(R"({"prompt":"x","repetition_penalty":0})", 400, "repetition_penalty", "decimal_below_min_value");
  require_error(R"({"prompt":"x","logprobs":21})", 400, "logprobs", "integer_above_max_value");
  require_error(R"({"prompt":"x","logprobs":-1})", 400, "logprobs", "integer_below_min_value");
  require_error(R"({"prompt":[1000]})", 400, "prompt[0]", "integer_above_max_value"); // vocab_size 1000
  require_error(R"({"prompt":[-1]})", 400, "prompt[0]", "integer_below_min_value");
  require_error(R"({"prompt":"x","stop_token_ids":[1000]})", 400, "stop_token_ids[0]", "integer_above_max_value");
  require_error(R"({"prompt":"x","stop":[""]})", 400, "stop");
  require_error(R"({"prompt":"x","stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
                400, "stop", "array_above_max_length");
  require_error(R"({"prompt":"x","min_tokens":20,"max_tokens":10})", 400, "min_tokens");
  require_error(R"({"prompt":"x","stream_options":{"include_usage":true}})", 400, "stream_options");
}

TEST_CASE("completions: unsupported features are refused, not ignored", "[gateway][request]") {
  require_error(R"({"prompt":"x","suffix":"y"})", 400, "suffix", "unsupported_parameter");
  require_error(R"({"prompt":"x","logit_bias":{"5":100}})", 400, "logit_bias", "unsupported_parameter");
  require_error(R"({"prompt":"x","n":1,"best_of":2})", 400, "best_of", "unsupported_parameter");
}

TEST_CASE("check_context: prompt and max_tokens against max_model_len", "[gateway][request]") {
  CHECK(check_context(10, 5, 32, "prompt") == 5);
  CHECK(check_context(10, std::nullopt, 32, "prompt") == 22); // the rest of the context
  CHECK(check_context(10, 22, 32, "prompt") == 22);           // exactly full is fine
  auto past = error_of([] { check_context(10, 23, 32, "prompt"); });
  REQUIRE(past);
  CHECK(past->status == 400);
  CHECK(past->code == "context_length_exceeded");
  CHECK(past->param == "max_tokens");
  CHECK(past->message.find("32") != std::string::npos);
  auto too_long = error_of([] { check_context(32, std::nullopt, 32, "messages"); });
  REQUIRE(too_long);
  CHECK(too_long->param == "messages");
  CHECK(too_long->code == "context_length_exceeded");
}
