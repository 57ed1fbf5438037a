// The demo model served over HTTP gives transformers' greedy continuations: `actorserve serve`
// (no --model: the bundled demo model) answers /v1/completions for the 10 fixture prompts,
// given as token ids, with the text of transformers' 64 greedy tokens.
#include "model/tokenizer/tokenizer.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

extern char** environ;

using namespace actorserve;

namespace {

class demo_server {
public:
  explicit demo_server(const std::filesystem::path& dir) {
    port_file_ = dir / "port";
    const std::string exe = testing::executable().string(), pf = port_file_.string();
    std::vector<std::string> args{exe, "serve", "--port", "0", "--port-file", pf, "--device", "cpu"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file_);
      if (in >> port_ && port_ > 0) {
        httplib::Client c("127.0.0.1", port_);
        if (auto r = c.Get("/ready"); r && r->status == 200)
          return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("actorserve serve did not become ready within 60 s");
  }
  ~demo_server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }

private:
  std::filesystem::path port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

} // namespace

TEST_CASE("demo model over HTTP: greedy completions equal transformers' for 10 prompts") {
  std::ifstream in(testing::source_dir() / "tests/fixtures/demo/hf_greedy.json");
  REQUIRE(in.good());
  const auto fixture = nlohmann::json::parse(in);
  const auto tok = tokenizer::from_dir(testing::source_dir() / "models/demo");
  testing::temp_dir dir;
  demo_server server(dir.path());
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(120, 0);
  for (const auto& c : fixture["cases"]) {
    nlohmann::json body = {{"prompt", c["prompt_ids"]}, {"max_tokens", 64}, {"temperature", 0},
                           {"ignore_eos", true}};
    auto r = client.Post("/v1/completions", body.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    const auto answer = nlohmann::json::parse(r->body);
    const auto greedy = c["greedy_ids"].get<std::vector<int32_t>>();
    INFO("prompt: " << c["prompt"].get<std::string>());
    CHECK(answer["usage"]["completion_tokens"] == 64);
    CHECK(answer["choices"][0]["text"].get<std::string>() == tok.decode(greedy, /*skip_special_tokens=*/true));
  }
}
