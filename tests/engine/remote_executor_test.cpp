// The executor in another process (`actorserve executor`), connected through CAF's middleman on
// loopback: the same tokens and logprobs (-inf included) as in-process, on the fake model and
// on the CPU backend; a frozen executor process fails requests within seconds instead of
// hanging them.
#include "engine_helpers.hpp"
#include "tests/testing.hpp"

#include "actors/protocol.hpp"
#include "model/cpu_backend.hpp"

#include <csignal>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

extern char** environ;

using namespace actorserve;
using namespace actorserve::testing;
using namespace std::chrono_literals;

namespace {

/// `actorserve executor ARGS --port 0 --port-file F` as a child process.
class executor_process {
public:
  explicit executor_process(std::vector<std::string> args) {
    port_file_ = dir_.path() / "port";
    args.insert(args.begin(), {executable().string(), "executor"});
    args.insert(args.end(), {"--port", "0", "--port-file", port_file_.string()});
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    for (int i = 0; i < 600 && !std::filesystem::exists(port_file_); ++i)
      std::this_thread::sleep_for(50ms);
    REQUIRE(std::filesystem::exists(port_file_));
    std::ifstream(port_file_) >> port_;
    REQUIRE(port_ > 0);
  }
  ~executor_process() {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_)
        return;
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  remote_executor_address address() const { return {"127.0.0.1", port_}; }
  void freeze() { ::kill(pid_, SIGSTOP); }

private:
  temp_dir dir_;
  std::filesystem::path port_file_;
  pid_t pid_ = 0;
  uint16_t port_ = 0;
};

std::vector<generate_request> workload(int32_t vocab) {
  std::vector<generate_request> out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(request_of(uint64_t(i + 1), prompt_of(3 + (i * 7) % 23, i, vocab), 10 + i,
                               i % 2 ? 0.9f : 0.0f, uint64_t(70 + i)));
    out.back().ignore_eos = true;
    out.back().sampling.logprobs = vocab <= 4 ? vocab : 3; // all of a tiny vocabulary: EOS included
  }
  return out;
}

engine_config config() {
  engine_config c;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 32;
  c.remote_timeout = 20s;
  return c;
}

void check_same(std::map<uint64_t, collected>& local, std::map<uint64_t, collected>& remote,
                const std::vector<generate_request>& reqs) {
  for (const auto& r : reqs) {
    CHECK(remote[r.id].error == engine_errc::none);
    CHECK(remote[r.id].tokens[0] == local[r.id].tokens[0]);
    const auto& a = local[r.id].logprobs[0];
    const auto& b = remote[r.id].logprobs[0];
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(float_bits(a[i].logprob) == float_bits(b[i].logprob));
      CHECK(a[i].top.size() == b[i].top.size());
    }
  }
}

} // namespace

TEST_CASE("remote executor: fake model gives the same tokens and -inf logprobs as in-process", "[engine][remote]") {
  // EOS (id 1) has logit -inf: its logprob is -inf and it shows up among the top logprobs of a
  // 4-token vocabulary, so non-finite floats must cross the process boundary.
  executor_process proc({"--fake", "--fake-vocab", "4", "--fake-eos-bias", "-inf", "--block-size", "4", "--num-blocks",
                         "256"});
  auto o = fake_options();
  o.vocab_size = 4;
  o.eos_logit_bias = -std::numeric_limits<float>::infinity();
  auto reqs = workload(4);
  auto local_engine = engine::start(config(), fake_factory(o));
  auto local = run_all(*local_engine, reqs);
  auto remote_engine = engine::start(config(), proc.address());
  auto remote = run_all(*remote_engine, reqs);
  check_same(local, remote, reqs);
  bool saw_inf = false;
  for (const auto& r : reqs)
    for (const auto& lp : remote[r.id].logprobs[0])
      for (const auto& [token, value] : lp.top)
        saw_inf = saw_inf || (token == 1 && std::isinf(value));
  CHECK(saw_inf);
}

TEST_CASE("remote executor: CPU backend gives the same tokens as in-process", "[engine][remote][cpu]") {
  auto model = source_dir() / "models" / "demo";
  executor_process proc({"--model", model.string(), "--num-blocks", "128", "--threads", "2"});
  auto reqs = workload(4000);
  cpu_backend_options o;
  o.num_blocks = 128;
  o.num_threads = 2;
  auto local_engine = engine::start(config(), [&] { return make_cpu_backend(model, o); });
  auto local = run_all(*local_engine, reqs);
  auto remote_engine = engine::start(config(), proc.address());
  auto remote = run_all(*remote_engine, reqs);
  check_same(local, remote, reqs);
}

TEST_CASE("remote executor: a frozen executor fails requests within seconds", "[engine][remote]") {
  executor_process proc({"--fake", "--block-size", "4"});
  engine_config c = config();
  c.remote_timeout = 2s;
  auto e = engine::start(c, proc.address());
  REQUIRE(run_all(*e, {request_of(1, {5, 6, 7}, 3)})[1].error == engine_errc::none);
  proc.freeze();
  auto start = std::chrono::steady_clock::now();
  auto out = run_all(*e, {request_of(2, {5, 6, 7}, 3)}, 30s);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(out[2].error == engine_errc::executor_failed);
  CHECK(took < 15s);
  INFO(out[2].error_message);
  CHECK_FALSE(out[2].error_message.empty());
}
