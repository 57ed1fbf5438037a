#pragma once
// A fake Hugging Face Hub on loopback for the download tests and the local StatefulSet run.
// It speaks the parts of the Hub's HTTP API that huggingface_hub uses for a download:
//   GET  /api/models/{repo}/revision/{rev}[?blobs=true]  -> sha, siblings (size, blobId, lfs)
//   GET|HEAD /{repo}/resolve/{rev}/{file}               -> regular files: 200 with ETag;
//        LFS files: 302 to a second server (the "CDN", another port) with X-Linked-Etag,
//        X-Linked-Size and X-Repo-Commit, as the Hub does
//   GET  /blobs/{sha256} on the CDN                     -> the bytes, with Range support
// and injects faults: connections dropped midway, corrupt bytes, ignored Range headers, a
// required token, and metadata without blobs (a mirror that ignores blobs=true).

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace actorserve::testing {

struct fake_file {
  std::string content;
  bool lfs = false;
};

struct fake_repo {
  std::map<std::string, fake_file> files; // name (may contain '/') -> content
  std::string commit;                     // 40 hex, derived from the content
};

/// A file's content as the default rule on the Hub: *.safetensors and files over 10 MB are LFS.
fake_repo repo_from_folder(const std::filesystem::path& dir);
fake_repo make_repo(std::map<std::string, fake_file> files);

struct request_record {
  std::string server; // "hub" or "cdn"
  std::string method;
  std::string path;
  std::string range;
  bool authorized = false; // carried an Authorization header
};

class fake_hub {
public:
  fake_hub();
  ~fake_hub();
  fake_hub(const fake_hub&) = delete;
  fake_hub& operator=(const fake_hub&) = delete;

  std::string endpoint() const; // http://127.0.0.1:PORT of the hub
  int cdn_port() const { return cdn_port_; }

  void set_repo(const std::string& name, fake_repo repo);
  /// The next `times` GETs of `file` on the CDN close the connection after byte `at_byte`.
  void drop_after(const std::string& file, int64_t at_byte, int times);
  /// Serve `file` with one byte flipped (size unchanged) while `on`.
  void corrupt(const std::string& file, bool on);
  void ignore_range(bool on) { ignore_range_ = on; }
  void require_token(std::string token);
  void omit_blobs(bool on) { omit_blobs_ = on; }
  /// Append one line per request ("hub GET /path [range]") to `path` as it arrives.
  void log_requests_to(std::filesystem::path path);
  /// Delay each CDN chunk (to keep a transfer in flight while a test acts).
  void chunk_delay_ms(int ms) { chunk_delay_ms_ = ms; }

  std::vector<request_record> requests() const;
  void clear_requests();
  /// Bytes of file content the CDN and the hub sent (all attempts).
  int64_t content_bytes_sent() const { return content_bytes_sent_; }

private:
  void install_hub_routes();
  void install_cdn_routes();
  void record(const std::string& server, const httplib::Request& req);
  bool authorized(const httplib::Request& req) const;
  void serve_content(const httplib::Request& req, httplib::Response& res, const std::string& name,
                     const std::string& content);

  httplib::Server hub_, cdn_;
  int hub_port_ = 0, cdn_port_ = 0;
  std::thread hub_thread_, cdn_thread_;
  mutable std::mutex mutex_;
  std::map<std::string, fake_repo> repos_;
  std::map<std::string, std::pair<int64_t, int>> drops_;
  std::set<std::string> corrupt_;
  std::map<std::string, std::string> blob_names_; // sha256 -> file name, for faults
  std::map<std::string, std::string> blobs_;      // sha256 -> content
  std::vector<request_record> requests_;
  std::string token_;
  std::filesystem::path log_path_;
  std::atomic<bool> ignore_range_{false}, omit_blobs_{false};
  std::atomic<int> chunk_delay_ms_{0};
  std::atomic<int64_t> content_bytes_sent_{0};
};

} // namespace actorserve::testing
