// `actorserve download`: fetch a model's serving files from the Hugging Face Hub into a
// folder (the model cache of a pod; see gateway/download.hpp for the guarantees).

#include "gateway/cli/command.hpp"
#include "gateway/download.hpp"

#include <cstdlib>
#include <iostream>

namespace actorserve::cli {
namespace {

struct download_args {
  download::download_options options;
  double retry_delay_s = 1.0;
};

int run_download(download_args& a) {
  if (const char* endpoint = std::getenv("HF_ENDPOINT"); endpoint && *endpoint)
    a.options.endpoint = endpoint;
  // HUGGING_FACE_HUB_TOKEN is the older name huggingface_hub still reads.
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (const char* token = std::getenv(name); token && *token && a.options.token.empty())
      a.options.token = token;
  a.options.retry_delay = std::chrono::milliseconds(static_cast<int64_t>(a.retry_delay_s * 1000));
  try {
    download::download_model(a.options);
    std::cout << a.options.dir.string() << "\n"; // the folder to pass to `serve --model`
    return 0;
  } catch (const download::download_error& e) {
    std::cerr << "actorserve download: error: " << e.what() << "\n";
    return 1;
  }
}

command_registrar download_command{
    "download", "fetch a model's serving files from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN) into a folder",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<download_args>();
      app.add_option("--repo", a->options.repo, "ORG/NAME on the Hub")->required();
      app.add_option("--revision", a->options.revision, "branch, tag or commit")->capture_default_str();
      app.add_option("--dir", a->options.dir, "folder to fill (created if missing)")->required();
      app.add_option("--workers", a->options.workers, "files fetched in parallel")
          ->capture_default_str()
          ->check(CLI::Range(1, 64));
      app.add_option("--max-attempts", a->options.max_attempts, "attempts per file, resumes included")
          ->capture_default_str()
          ->check(CLI::Range(1, 100));
      app.add_option("--retry-delay", a->retry_delay_s, "seconds before the first retry, doubled each time")
          ->capture_default_str()
          ->check(CLI::Range(0.0, 600.0));
      app.add_flag("--verify", a->options.verify_existing,
                   "re-hash the files of an already complete folder instead of trusting its marker");
      return [a] { return run_download(*a); };
    }};

} // namespace
} // namespace actorserve::cli
