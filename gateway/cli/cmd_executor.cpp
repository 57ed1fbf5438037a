// `actorserve executor` (hidden): runs an executor actor that owns a backend and publishes it
// through CAF's middleman, for an engine in another process or pod
// (engine::start(config, remote_executor_address)). Stops on SIGTERM or SIGINT.
#include "gateway/cli/command.hpp"

#include "actors/engine.hpp"
#include "actors/fake_backend.hpp"
#include "model/cpu_backend.hpp"

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <limits>

namespace actorserve::cli {
namespace {

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int) { stop_requested.store(true); }

struct executor_args {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string port_file;
  std::string model_dir;
  bool fake = false;
  cpu_backend_options cpu;
  fake_backend_options fake_options;
  std::string fake_eos_bias = "-100";
};

int run_executor(const executor_args& a) {
  if (a.model_dir.empty() == !a.fake)
    throw std::runtime_error("give exactly one of --model DIR and --fake");
  backend_factory factory;
  if (a.fake) {
    fake_backend_options o = a.fake_options;
    o.eos_logit_bias = a.fake_eos_bias == "-inf" ? -std::numeric_limits<float>::infinity() : std::stof(a.fake_eos_bias);
    factory = [o] { return make_fake_backend(o); };
  } else {
    factory = [dir = a.model_dir, o = a.cpu] { return make_cpu_backend(dir, o); };
  }
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  return serve_executor(
      factory, a.host, a.port,
      [&](uint16_t port) {
        std::cout << "executor listening on " << a.host << ":" << port << std::endl;
        if (!a.port_file.empty()) {
          // Written to a temporary name and renamed, so a reader never sees a partial file.
          std::string tmp = a.port_file + ".tmp";
          std::ofstream(tmp) << port << "\n";
          std::rename(tmp.c_str(), a.port_file.c_str());
        }
      },
      [] { return stop_requested.load(); });
}

const command_registrar registrar{
    "executor", "Serve a backend as a remote executor actor (for an engine in another process)",
    [](CLI::App& app) -> std::function<int()> {
      app.group(""); // hidden: an internal building block, not a user command
      auto a = std::make_shared<executor_args>();
      app.add_option("--host", a->host, "address to listen on")->capture_default_str();
      app.add_option("--port", a->port, "port to listen on (0: any free port)")->capture_default_str();
      app.add_option("--port-file", a->port_file, "write the bound port to this file once listening");
      app.add_option("--model", a->model_dir, "model folder: serve it with the CPU backend");
      app.add_flag("--fake", a->fake, "serve the deterministic fake model (tests)");
      app.add_option("--block-size", a->cpu.block_size, "KV block size in tokens")->capture_default_str();
      app.add_option("--num-blocks", a->cpu.num_blocks, "KV blocks (0: backend default)")->capture_default_str();
      app.add_option("--num-host-blocks", a->cpu.num_host_blocks, "host swap blocks")->capture_default_str();
      app.add_option("--threads", a->cpu.num_threads, "CPU threads (0: all cores)")->capture_default_str();
      app.add_option("--fake-vocab", a->fake_options.vocab_size, "fake model vocabulary")->capture_default_str();
      app.add_option("--fake-eos-bias", a->fake_eos_bias, "fake model EOS logit bias (a number or -inf)")
          ->capture_default_str();
      return [a] {
        // The fake model shares the KV shape options.
        a->fake_options.block_size = a->cpu.block_size;
        if (a->cpu.num_blocks > 0)
          a->fake_options.num_blocks = a->cpu.num_blocks;
        a->fake_options.num_host_blocks = a->cpu.num_host_blocks;
        return run_executor(*a);
      };
    }};

} // namespace
} // namespace actorserve::cli
