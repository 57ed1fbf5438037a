// POST /tokenize and /detokenize bodies against the demo model's real tokenizer and chat
// template: the ids are the tokenizer's, the chat form equals the chat path's prompt.
#include "gateway/request_builder.hpp"
#include "gateway/tokenize_api.hpp"
#include "tests/gateway/request_test_helpers.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>

using namespace actorserve;
using namespace actorserve::gateway;
using json = nlohmann::ordered_json;

namespace {

const text_frontend& demo_frontend() {
  static const auto f = load_text_frontend(actorserve::testing::source_dir() / "models" / "demo");
  return *f;
}

request_limits demo_limits() {
  request_limits l = test::limits();
  l.vocab_size = demo_frontend().vocab_size();
  return l;
}

json tokenize(const std::string& body) {
  return json::parse(tokenize_response(parse_json_body(body), demo_limits(), demo_frontend(), 512));
}

std::optional<api_error> tokenize_error(const std::string& body) {
  return test::error_of([&] { tokenize(body); });
}

std::optional<api_error> detokenize_error(const std::string& body) {
  return test::error_of([&] { detokenize_response(parse_json_body(body), demo_limits(), demo_frontend()); });
}

} // namespace

TEST_CASE("tokenize a prompt: the tokenizer's ids, BOS unless add_special_tokens is false", "[gateway][tokenize]") {
  const text_frontend& f = demo_frontend();
  const json r = tokenize(R"({"model": "tiny", "prompt": "hello world"})");
  const std::vector<int32_t> expected = f.encode("hello world", true);
  CHECK(r["tokens"].get<std::vector<int32_t>>() == expected);
  CHECK(r["count"] == expected.size());
  CHECK(r["max_model_len"] == 512);
  CHECK(r["token_strs"].is_null());
  CHECK(std::vector<std::string>{"count", "max_model_len", "tokens", "token_strs"} ==
        std::vector<std::string>{r.begin().key(), std::next(r.begin()).key(), std::next(r.begin(), 2).key(),
                                 std::next(r.begin(), 3).key()});
  const json plain = tokenize(R"({"prompt": "hello world", "add_special_tokens": false})");
  CHECK(plain["tokens"].get<std::vector<int32_t>>() == f.encode("hello world", false));
  CHECK(plain["count"].get<size_t>() + 1 == expected.size()); // the demo tokenizer adds one BOS
}

TEST_CASE("tokenize return_token_strs gives each id's vocabulary string", "[gateway][tokenize]") {
  const json r = tokenize(R"({"prompt": "hello world", "return_token_strs": true})");
  const auto ids = r["tokens"].get<std::vector<int32_t>>();
  REQUIRE(r["token_strs"].size() == ids.size());
  CHECK(r["token_strs"][0] == "<|bos|>");
  std::string joined;
  for (size_t i = 1; i < ids.size(); ++i)
    joined += r["token_strs"][i].get<std::string>();
  CHECK(joined.find("hello") != std::string::npos);
}

TEST_CASE("tokenize messages renders the chat template as the chat path does", "[gateway][tokenize]") {
  const text_frontend& f = demo_frontend();
  const std::string messages = R"("messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}])";
  const json r = tokenize("{" + messages + "}");
  const chat_request chat = parse_chat_request(parse_json_body("{" + messages + "}"), demo_limits());
  const prepared_request prepared = prepare_chat(chat, f, 512, {});
  CHECK(r["tokens"].get<std::vector<int32_t>>() == prepared.engine_requests.at(0).prompt_token_ids);
  CHECK(f.apply_chat_template(chat) == "<|bos|><|system|>\nbe brief<|end|>\n<|user|>\nhi there<|end|>\n<|assistant|>\n");

  const json no_prompt = tokenize("{" + messages + R"(, "add_generation_prompt": false})");
  CHECK(no_prompt["tokens"].get<std::vector<int32_t>>() ==
        f.encode("<|bos|><|system|>\nbe brief<|end|>\n<|user|>\nhi there<|end|>\n", false));
  const json with_special = tokenize("{" + messages + R"(, "add_special_tokens": true})");
  CHECK(with_special["count"].get<size_t>() == r["count"].get<size_t>() + 1); // a second BOS
}

TEST_CASE("tokenize messages with tools needs no tool-call flags", "[gateway][tokenize]") {
  // /v1/chat/completions would refuse tools here (tool_choice auto without a parser); /tokenize
  // only renders them.
  const std::string body = R"({"messages": [{"role": "user", "content": "hi"}],
    "tools": [{"type": "function", "function": {"name": "f"}}]})";
  CHECK(test::chat_error(body).has_value());
  CHECK(tokenize(body)["count"].get<size_t>() > 0);
}

TEST_CASE("tokenize refuses bad bodies with OpenAI errors", "[gateway][tokenize]") {
  auto e = tokenize_error(R"({"model": "other", "prompt": "x"})");
  REQUIRE(e);
  CHECK(e->status == 404);
  CHECK(e->code == "model_not_found");
  e = tokenize_error(R"({"model": "tiny"})");
  REQUIRE(e);
  CHECK(e->status == 400);
  CHECK(e->param == "prompt");
  e = tokenize_error(R"({"prompt": "x", "messages": [{"role": "user", "content": "y"}]})");
  REQUIRE(e);
  CHECK(e->status == 400);
  e = tokenize_error(R"({"prompt": 5})");
  REQUIRE(e);
  CHECK(e->param == "prompt");
  e = tokenize_error(R"({"messages": "hi"})");
  REQUIRE(e);
  CHECK(e->status == 400);
  e = tokenize_error(R"([1, 2])");
  REQUIRE(e);
  CHECK(e->status == 400);
}

TEST_CASE("detokenize round-trips tokenize and refuses ids outside the vocabulary", "[gateway][tokenize]") {
  const json ids = tokenize(R"({"prompt": "hello world", "add_special_tokens": false})")["tokens"];
  const json body = json{{"model", "tiny-alias"}, {"tokens", ids}};
  const json r = json::parse(detokenize_response(body, demo_limits(), demo_frontend()));
  CHECK(r == json{{"prompt", "hello world"}});

  const int64_t vocab = demo_frontend().vocab_size();
  auto e = detokenize_error(R"({"tokens": [1, )" + std::to_string(vocab) + "]}");
  REQUIRE(e);
  CHECK(e->status == 400);
  CHECK(e->param == "tokens[1]");
  e = detokenize_error(R"({"tokens": [-1]})");
  REQUIRE(e);
  CHECK(e->status == 400);
  e = detokenize_error(R"({"tokens": "12"})");
  REQUIRE(e);
  CHECK(e->param == "tokens");
  e = detokenize_error(R"({})");
  REQUIRE(e);
  CHECK(e->param == "tokens");
  e = detokenize_error(R"({"model": "nope", "tokens": [1]})");
  REQUIRE(e);
  CHECK(e->status == 404);
}
