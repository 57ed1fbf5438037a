#include "gateway/download_hash.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <stdexcept>
#include <vector>

namespace actorserve::download {

struct digest::state {
  EVP_MD_CTX* ctx = nullptr;
};

digest::digest(digest_kind kind) : state_(std::make_unique<state>()) {
  state_->ctx = EVP_MD_CTX_new();
  const EVP_MD* md = kind == digest_kind::sha256 ? EVP_sha256() : EVP_sha1();
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, md, nullptr) != 1)
    throw std::runtime_error("OpenSSL: cannot initialise a digest");
}

digest::~digest() { EVP_MD_CTX_free(state_->ctx); }

void digest::update(const void* data, size_t size) {
  if (EVP_DigestUpdate(state_->ctx, data, size) != 1)
    throw std::runtime_error("OpenSSL: digest update failed");
}

std::string digest::hex_final() {
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(state_->ctx, raw, &length) != 1)
    throw std::runtime_error("OpenSSL: digest final failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[raw[i] >> 4];
    out += hex[raw[i] & 15];
  }
  return out;
}

namespace {

void hash_file_into(digest& d, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path.string());
  std::vector<char> buffer(size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0)
      d.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad())
    throw std::runtime_error("read error in " + path.string());
}

} // namespace

std::string file_sha256(const std::filesystem::path& path) {
  digest d(digest_kind::sha256);
  hash_file_into(d, path);
  return d.hex_final();
}

std::string file_git_blob_sha1(const std::filesystem::path& path) {
  digest d(digest_kind::sha1);
  auto header = "blob " + std::to_string(std::filesystem::file_size(path));
  d.update(header.data(), header.size() + 1); // with the terminating NUL
  hash_file_into(d, path);
  return d.hex_final();
}

std::string git_blob_sha1(std::string_view content) {
  digest d(digest_kind::sha1);
  auto header = "blob " + std::to_string(content.size());
  d.update(header.data(), header.size() + 1);
  d.update(content.data(), content.size());
  return d.hex_final();
}

std::string sha256_hex(std::string_view content) {
  digest d(digest_kind::sha256);
  d.update(content.data(), content.size());
  return d.hex_final();
}

} // namespace actorserve::download
