#pragma once
// `actorserve download`: fetches the files a model needs for serving from the Hugging Face
// Hub (or a mirror at HF_ENDPOINT) into a folder, safely shared by several processes.
//
// Layout of DIR:
//   DIR/<files>                    verified files, renamed into place (config.json last)
//   DIR/.actorserve/lock           flock'ed by the one process downloading into DIR
//   DIR/.actorserve/partial/*.part bytes received so far (resumed with Range requests)
//   DIR/.actorserve/complete.json  the completion marker, written last, atomically
// Invariant: while DIR lacks a marker matching what is asked, DIR has no config.json, so a
// server pointed at a half-downloaded folder refuses it instead of loading a partial model.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve::download {

/// A failure the user can act on (wrong repo, no access, corrupt file, no disk space).
class download_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One file of a repo revision as the Hub describes it.
struct hub_file {
  std::string name;
  int64_t size = -1;
  std::string sha256;   // LFS files: sha256 of the content
  std::string git_sha1; // regular files: git blob id
};

/// True for the files serving needs: config.json, generation_config.json, tokenizer*,
/// special_tokens_map.json, chat_template.jinja, *.safetensors and model.safetensors.index.json,
/// at the repo's top level.
bool is_serving_file(std::string_view name);

struct download_options {
  // HF_ENDPOINT; file:///PATH reads a mirror laid out as PATH/ORG/NAME/FILE (one revision,
  // verified against the sha256 of its own files).
  std::string endpoint = "https://huggingface.co";
  std::string repo;                                // ORG/NAME
  std::string revision = "main";                   // branch, tag or commit
  std::filesystem::path dir;
  std::string token; // HF_TOKEN
  int max_attempts = 5;                              // per file, counting resumes
  std::chrono::milliseconds retry_delay{1000};       // doubled after each failed attempt
  std::chrono::seconds read_timeout{60};
  int workers = 4;                                   // files fetched in parallel
  bool verify_existing = false;                      // re-hash a complete folder's files
  std::function<void(const std::string&)> log;       // progress lines; stderr when empty
};

struct completion_marker {
  std::string repo;
  std::string revision;
  std::string commit;
  std::vector<hub_file> files;
};

/// The marker of DIR, or nullopt when absent or unreadable.
std::optional<completion_marker> read_marker(const std::filesystem::path& dir);

struct download_result {
  bool already_complete = false; // nothing was fetched
  std::string commit;
  int64_t bytes_fetched = 0;
  std::vector<hub_file> files;
};

/// Makes DIR hold the serving files of repo@revision, verified, with a completion marker.
/// Does nothing (and makes no request) when the marker already matches and the files have
/// their recorded sizes. Throws download_error.
download_result download_model(const download_options& options);

/// The lock of DIR (flock on DIR/.actorserve/lock), held while alive.
class folder_lock {
public:
  /// Blocks until the lock is free; `on_wait` is called once if it has to wait.
  folder_lock(const std::filesystem::path& dir, const std::function<void()>& on_wait);
  ~folder_lock();
  folder_lock(const folder_lock&) = delete;
  folder_lock& operator=(const folder_lock&) = delete;

private:
  int fd_ = -1;
};

} // namespace actorserve::download
