#pragma once
// Migration by KV shipping: the wire format of a sequence's exported K/V (kv_snapshot) between
// nodes. The exporting node splits the payload into a header document and chunk documents of
// bounded size; the importing node pulls them one by one (kv_fetch_msg) and assembles them with
// `kv_assembler`, which refuses a peer running another model, layout or dtype, and any
// corrupt, truncated, reordered or oversized chunk (xxh3 per chunk and over the whole
// payload), with a wire_error naming what is wrong. The node then migrates by recomputation.
//
// Documents are msgpack arrays [protocol_version, kind, fields...] like actors/cluster/wire.hpp,
// decoded with msgpack's size limits bounded by the document's own length (a few fuzzed bytes
// cannot make the decoder allocate gigabytes).

#include "actors/cluster/wire.hpp"
#include "actors/engine.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

namespace actorserve::cluster {

/// How a running sequence moves to another node (cluster_config::migration).
enum class migration_method { recompute, kv };
const char* to_string(migration_method m);
std::optional<migration_method> parse_migration_method(std::string_view s);

constexpr size_t default_kv_chunk_bytes = size_t(1) << 20;
constexpr uint64_t max_kv_payload_bytes = uint64_t(8) << 30;

/// What the importing node checks before accepting any chunk.
struct kv_header {
  uint64_t transfer_id = 0;
  std::string model_id;            // served model name + config fingerprint of the exporter
  kv_transfer_layout layout;
  int32_t block_size = 0;          // exporter's (informational: the payload is token-major)
  std::vector<int32_t> token_ids;  // positions [0, size) the payload holds
  uint64_t total_bytes = 0;        // = token_ids.size() * layout.token_bytes()
  uint32_t chunk_bytes = 0;        // every chunk but the last holds exactly this many
  uint32_t num_chunks = 0;
  uint64_t payload_hash = 0;       // xxh3-64 of the whole payload
};

struct kv_chunk {
  uint64_t transfer_id = 0;
  uint32_t index = 0;
  uint64_t hash = 0;               // xxh3-64 of `bytes`
  std::string bytes;
};

/// Importing node -> exporting node: the header (index -1) or chunk `index` of a transfer, or
/// kv_release_index: the importer gave up, the exporter may drop it.
constexpr int64_t kv_release_index = -2;
struct kv_fetch_msg {
  uint64_t transfer_id = 0;
  int64_t index = -1;
};

/// Exporting node -> importing node when it cannot answer a fetch (unknown or expired transfer).
struct kv_refusal {
  std::string reason;
};

std::string encode(const kv_header& m);
std::string encode(const kv_chunk& m);
std::string encode(const kv_fetch_msg& m);
std::string encode(const kv_refusal& m);
void decode(const std::string& bytes, kv_header& m);
void decode(const std::string& bytes, kv_chunk& m);
void decode(const std::string& bytes, kv_fetch_msg& m);
void decode(const std::string& bytes, kv_refusal& m);
/// True when `bytes` is a kv_refusal document (its reason in `reason`).
bool is_kv_refusal(const std::string& bytes, std::string& reason);

/// A snapshot split into encoded documents, as the exporting node keeps it until fetched.
struct kv_package {
  kv_header header;
  std::string header_doc;
  std::vector<std::string> chunk_docs;
  size_t payload_bytes() const { return size_t(header.total_bytes); }
};

/// Splits `snap` (no error, consistent sizes) into a header and chunks of at most
/// `chunk_bytes`; throws wire_error when the snapshot is inconsistent.
kv_package package_kv(const kv_snapshot& snap, uint64_t transfer_id, const std::string& model_id,
                      size_t chunk_bytes = default_kv_chunk_bytes);

/// Receives one transfer: the header first, then chunks 0, 1, ... in order. Every method
/// throws wire_error on a mismatch or corruption; the assembler is then unusable.
class kv_assembler {
public:
  /// Decodes and checks the header against this node's model id and KV layout, and sizes
  /// (at most `max_bytes` in all).
  kv_assembler(const std::string& header_doc, const std::string& model_id, const kv_transfer_layout& local,
               uint64_t max_bytes = max_kv_payload_bytes);
  const kv_header& header() const { return header_; }
  uint32_t next_index() const { return next_; }
  bool complete() const { return next_ == header_.num_chunks; }
  /// Checks and appends the next chunk.
  void add_chunk(const std::string& chunk_doc);
  /// The assembled snapshot (after the last chunk; checks the whole-payload hash).
  std::shared_ptr<const kv_snapshot> finish();

private:
  kv_header header_;
  std::string payload_;
  uint32_t next_ = 0;
};

/// A stable identity of the model a node serves (name + xxh3 of its config.json text), so a
/// peer running other weights' shape or another model refuses a payload.
std::string kv_model_id(const std::string& served_model_name, const std::string& config_json_text);

} // namespace actorserve::cluster
