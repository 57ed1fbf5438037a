#pragma once
// Streaming digests for verifying downloads against the Hub's metadata: SHA-256 for LFS
// files (the Hub's `lfs.sha256`, the X-Linked-Etag of resolve URLs) and git's blob SHA-1 for
// regular files (the Hub's `blobId`, their ETag).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace actorserve::download {

enum class digest_kind { sha256, sha1 };

/// Incremental digest over OpenSSL's EVP interface.
class digest {
public:
  explicit digest(digest_kind kind);
  ~digest();
  digest(const digest&) = delete;
  digest& operator=(const digest&) = delete;

  void update(const void* data, size_t size);
  /// Lowercase hex; the object cannot be updated afterwards.
  std::string hex_final();

private:
  struct state;
  std::unique_ptr<state> state_;
};

/// SHA-256 of a file's bytes, lowercase hex. Throws std::runtime_error when unreadable.
std::string file_sha256(const std::filesystem::path& path);
/// git's blob id: SHA-1 of "blob <size>\0" followed by the bytes.
std::string file_git_blob_sha1(const std::filesystem::path& path);
std::string git_blob_sha1(std::string_view content);
std::string sha256_hex(std::string_view content);

} // namespace actorserve::download
