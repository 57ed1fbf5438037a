#pragma once
// The cluster's messages on the wire. CAF carries them as (atom, std::string) pairs whose
// string is a msgpack document of one of these structs: nothing but atoms and strings is
// serialized by CAF, so CAF 0.17's non-finite-float trap cannot bite (logprobs of -inf travel
// as msgpack floats), and a malformed or truncated document is refused by `decode` with a
// wire_error (logged, answered with an error where a reply is expected), never a crash.
// Every document starts with the protocol version; a different version is refused.

#include "actors/engine.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace actorserve::cluster {

/// Bump on any incompatible change of these structs or of the message flow.
// 2: KV shipping (forward and migrate name a KV transfer);
// 3: resumed output tokens in forward (per-choice resume), an admin migration's target in migrate.
constexpr uint32_t protocol_version = 3;

struct wire_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// First message on a new connection, both ways.
struct hello_msg {
  uint32_t version = protocol_version;
  std::string name;         // stable node name (pod name, or host:cluster-port)
  uint64_t incarnation = 0; // grows with every start of a node of this name
};

struct hello_reply_msg {
  bool accepted = false;
  std::string reason; // why not, for the log
  std::string name;
  uint64_t incarnation = 0;
};

/// Sent to every peer several times a second: load, and prefix hashes newly served.
struct load_msg {
  std::string name;
  uint64_t incarnation = 0;
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t capacity = 1;
  double kv_usage = 0;
  bool draining = false;
  std::vector<uint64_t> new_prefixes;
};

/// A request placed on another node (or resumed there after a failover or a migration).
struct forward_msg {
  uint64_t origin_id = 0;  // the accepting node's id of the request
  uint32_t attempt = 0;    // grows with every placement of the request
  generate_request request; // id ignored; deadline sent as milliseconds left
  std::string kv_node;       // migration by KV shipping: fetch transfer kv_transfer_id from this
  uint64_t kv_transfer_id = 0; // node first (empty/0: none, or when it fails: recompute)
};

struct forward_reply_msg {
  engine_errc error = engine_errc::none;
  std::string message;
};

/// One event of a forwarded request, back to the accepting node.
struct output_msg {
  uint64_t origin_id = 0;
  uint32_t attempt = 0;
  request_output output;
};

/// The executing node asks the accepting node to move a request elsewhere (it is draining, or
/// an admin call moves everything off it).
struct migrate_msg {
  uint64_t origin_id = 0;
  uint32_t attempt = 0;
  uint64_t kv_transfer_id = 0; // the sender exported the sequence's K/V under this id (0: none)
  std::string to;              // an admin migration's target node (empty: the origin's router picks)
};

struct cancel_msg {
  uint64_t origin_id = 0;
  uint32_t attempt = 0;
};

std::string encode(const hello_msg& m);
std::string encode(const hello_reply_msg& m);
std::string encode(const load_msg& m);
std::string encode(const forward_msg& m);
std::string encode(const forward_reply_msg& m);
std::string encode(const output_msg& m);
std::string encode(const migrate_msg& m);
std::string encode(const cancel_msg& m);

/// Each throws wire_error on a malformed, truncated or wrong-version document.
void decode(const std::string& bytes, hello_msg& m);
void decode(const std::string& bytes, hello_reply_msg& m);
void decode(const std::string& bytes, load_msg& m);
void decode(const std::string& bytes, forward_msg& m);
void decode(const std::string& bytes, forward_reply_msg& m);
void decode(const std::string& bytes, output_msg& m);
void decode(const std::string& bytes, migrate_msg& m);
void decode(const std::string& bytes, cancel_msg& m);

/// Reads only the version field of a hello (so a peer of another version gets a clear reason).
uint32_t peek_version(const std::string& bytes);

} // namespace actorserve::cluster
