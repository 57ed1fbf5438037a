#pragma once
// The public embedding API of the actor engine. No CAF types here (only a forward declaration
// for embedding into an existing actor system): the gateway, the CLI and other programs submit
// native requests and receive streamed outputs through a thread-safe sink, never blocking on
// the engine. Applications that want to talk to the engine with CAF messages directly use
// actors/engine_actors.hpp instead (typed handles, the type-ID block, inspect functions).
//
// Threads: every engine member function may be called from any thread. `submit`, `cancel`
// and `stats` never block. Sink callbacks run on actor threads: they must be quick and must
// not call back into the engine synchronously (queue the work, or use `output_queue`).

#include "model/backend.hpp"
#include "model/sampling.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace caf {
class actor_system;
}

namespace actorserve {

using engine_clock = std::chrono::steady_clock;

/// Why a request (or a submit call) failed. `none` for success.
enum class engine_errc : int32_t {
  none = 0,
  invalid_request,   // bad parameters: empty prompt, prompt longer than max_model_len, n < 1 ...
  overloaded,        // the waiting queue is full (HTTP 503/429)
  shutting_down,     // the engine is draining or stopped
  executor_failed,   // the backend failed while running this request's step
  deadline_exceeded, // the request's deadline passed
  cancelled,         // cancelled by the caller (finish_reason abort)
};
const char* to_string(engine_errc e);

enum class finish_reason : int32_t {
  none = 0, // not finished yet
  stop,     // EOS, a stop token id, or a stop string
  length,   // max_tokens, or max_model_len reached
  abort,    // cancelled, deadline, executor failure, shutdown (see request_output::error)
};
const char* to_string(finish_reason r); // "stop", "length", "abort", "" for none

/// A running sequence's KV entries, exported for migration to another node (engine::export_kv)
/// and handed to the target's engine with the resumed request (generate_request::kv_import).
struct kv_snapshot {
  std::vector<int32_t> token_ids; // the tokens at positions [0, size) whose K/V `data` holds
  kv_transfer_layout layout;      // of the exporting backend
  int32_t block_size = 0;         // of the exporting engine (informational: the layout is token-major)
  std::string data;               // layout.token_bytes() * token_ids.size() bytes
  std::string error;              // non-empty: no snapshot, and why
};

/// One generation request in native form: the gateway has already parsed JSON, applied the
/// chat template and tokenized.
struct generate_request {
  uint64_t id = 0; // unique among live requests; 0: the engine assigns one (submit returns it)
  std::vector<int32_t> prompt_token_ids;
  sampling_params sampling; // temperature, top_p, top_k, min_p, penalties, seed, logprobs
  bool has_seed = false;    // false: the engine draws a random seed (sampling.seed ignored)
  int32_t max_tokens = 16;  // per choice; also capped by max_model_len - prompt length
  int32_t min_tokens = 0;   // EOS and stop token ids are ignored before this many tokens
  std::vector<int32_t> stop_token_ids; // in addition to the model's EOS ids (unless ignore_eos)
  std::vector<std::string> stop;       // stop strings, matched on the detokenized text
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;         // do not stop at the model's EOS ids (stop_token_ids still do)
  bool skip_special_tokens = true; // passed to the detokenizer
  bool detokenize = true;          // false: no text, stop strings not allowed
  int32_t n = 1;                   // choices sharing the prompt's KV blocks
  int32_t priority = 0;            // lower runs first when engine_config::policy is priority
  engine_clock::time_point arrival_time{};                      // default: time of submit
  engine_clock::time_point deadline = engine_clock::time_point::max(); // abort after this
  /// Resuming a request elsewhere (cluster failover, migration by recomputation): the output
  /// tokens already generated and delivered to the client (n == 1 only; resume each choice of
  /// an n > 1 request on its own, with seed + choice index). The engine continues as if it had
  /// generated them: they count toward max_tokens, min_tokens and usage.completion_tokens, the
  /// penalties see them as output, the sampling index continues at their count (a seeded
  /// request continues the same stream), stop strings see their text, and the events carry only
  /// new tokens (plus text the interrupted run still held back for a partial stop string).
  std::vector<int32_t> resume_output_token_ids;
  /// Migration by KV shipping: K/V of a prefix of the sequence (prompt_token_ids, then
  /// resume_output_token_ids) computed elsewhere (same model and layout). The engine imports the
  /// longest prefix whose tokens match, leaving the last token to compute, instead of prefilling
  /// it. In-process only (not serialized).
  std::shared_ptr<const kv_snapshot> kv_import;
};

/// Log probability of one generated token, and the top alternatives when requested.
struct token_logprob {
  int32_t token = -1;
  float logprob = 0.0f; // may be -inf
  std::vector<std::pair<int32_t, float>> top; // best first, sampling.logprobs entries
};

/// What one choice gained since the previous event of its request.
struct choice_delta {
  int32_t index = 0;              // choice index in [0, n)
  std::vector<int32_t> token_ids; // new token ids (a matched stop token id is included)
  std::string text;               // new text; text that may still become a stop string is held back
  std::vector<token_logprob> logprobs; // one per new token when sampling.logprobs >= 0
  finish_reason finish = finish_reason::none;
  std::string stop_str;           // the stop string that finished this choice, if any
  int32_t stop_token = -1;        // the stop token id that finished this choice, if any
};

/// Timings of one request, filled on its final event (seconds, engine_clock).
struct request_metrics {
  double queue_time_s = 0;    // arrival -> first scheduled
  double ttft_s = 0;          // arrival -> first token of any choice
  double e2e_s = 0;           // arrival -> finished
  std::vector<double> inter_token_s; // gaps between consecutive tokens of each choice
  int32_t num_preemptions = 0;
  int32_t num_cached_prompt_tokens = 0; // prompt tokens served from the prefix cache
};

struct usage_counts {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0; // summed over choices
};

/// One event of a request's stream. The last event has `finished` set; nothing follows it.
struct request_output {
  uint64_t request_id = 0;
  std::vector<choice_delta> choices; // only choices with news
  bool finished = false;             // every choice has finished: usage and metrics are final
  engine_errc error = engine_errc::none; // set when the request failed as a whole
  std::string error_message;
  usage_counts usage;       // running totals
  request_metrics metrics;  // on the final event
};

/// Receives a request's events in order. Called from actor threads, one call at a time per
/// request, never after the event with `finished`.
using output_sink = std::function<void(request_output&&)>;

/// Streaming detokenization of one choice: fed one id at a time, returns the text that has
/// become final (used by one request actor at a time).
class detokenizer_stream {
public:
  virtual ~detokenizer_stream() = default;
  virtual std::string add(int32_t token_id) = 0;
  /// End of the stream: the text still held back.
  virtual std::string finish() = 0;
};

/// Turns token ids into text. Must be thread-safe (called concurrently by request actors).
/// actors/tokenizer_detokenizer.hpp makes one from a tokenizer.json tokenizer.
class detokenizer {
public:
  virtual ~detokenizer() = default;
  virtual std::string decode(std::span<const int32_t> token_ids, bool skip_special_tokens) const = 0;
  /// Optional streaming decoder for one choice continuing `prompt_ids`. The default (null) makes
  /// the engine decode a window of recent ids with decode() and hold back text ending in U+FFFD.
  virtual std::unique_ptr<detokenizer_stream> stream(std::span<const int32_t> prompt_ids,
                                                     bool skip_special_tokens) const {
    return nullptr;
  }
};

/// A simple thread-safe queue to use as a sink from a thread that wants to wait (CLI, tests).
class output_queue {
public:
  output_queue();
  /// A sink feeding this queue; it may outlive the queue (events are then dropped).
  output_sink sink();
  /// The next event, or nullopt after `timeout`.
  std::optional<request_output> pop(std::chrono::milliseconds timeout);

private:
  struct state;
  std::shared_ptr<state> state_;
};

enum class preemption_mode : int32_t { recompute, swap };
enum class scheduling_policy : int32_t { fcfs, priority };

struct engine_config {
  int32_t max_num_seqs = 256;            // running sequences per step (choices count one each)
  int32_t max_num_batched_tokens = 2048; // tokens per step (prefill chunks + decodes)
  int32_t max_num_partial_prefills = 1;  // sequences whose prefill is chunked at the same time
  int32_t max_model_len = 0;             // 0: the model's max_position_embeddings
  bool enable_prefix_caching = true;
  preemption_mode preemption = preemption_mode::recompute;
  scheduling_policy policy = scheduling_policy::fcfs;
  int32_t max_waiting_requests = 1024;   // submit answers `overloaded` beyond this
  double watermark = 0.01;               // fraction of blocks admission keeps free for decodes
  std::chrono::milliseconds remote_timeout{30000}; // per request to a remote executor
};

/// Creates the backend; called once, on the executor's own (detached) thread.
using backend_factory = std::function<std::unique_ptr<backend>()>;

/// Where a remote executor listens (see `serve_executor`).
struct remote_executor_address {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

/// A snapshot of the engine's counters, refreshed by the scheduler after every iteration.
struct engine_stats {
  int32_t num_running = 0;  // sequences in the running set
  int32_t num_waiting = 0;  // requests not yet admitted, or preempted waiting to resume
  int32_t num_swapped = 0;  // sequences preempted to host blocks
  double kv_usage = 0;      // fraction of device KV blocks in use, [0, 1]
  int32_t num_blocks = 0;
  int32_t num_free_blocks = 0;
  int64_t prefix_cache_queries = 0; // prompt tokens looked up in the prefix cache
  int64_t prefix_cache_hits = 0;    // of which found
  int64_t num_preemptions = 0;
  int64_t prompt_tokens = 0;        // totals since start
  int64_t generation_tokens = 0;
  int64_t num_steps = 0;
  int64_t num_finished_requests = 0;
  int64_t num_executor_failures = 0;
  bool draining = false;
  double mean_schedule_us = 0; // CPU time of scheduler + kv manager per step (average)
  double mean_step_us = 0;     // executor time per step (average)
};

struct submit_result {
  uint64_t request_id = 0;
  engine_errc error = engine_errc::none;
  std::string message; // why, when error != none
  explicit operator bool() const { return error == engine_errc::none; }
};

class engine {
public:
  /// Starts an engine in its own actor system. Creates the backend through `make_backend` on
  /// the executor thread and waits until it is ready. Throws std::runtime_error if the backend
  /// cannot be created.
  static std::unique_ptr<engine> start(engine_config config, backend_factory make_backend,
                                       std::shared_ptr<const detokenizer> detok = nullptr);
  /// Same, spawning the actors in the embedding application's actor system (which must have
  /// registered actorserve's message types: see actors/engine_actors.hpp).
  static std::unique_ptr<engine> start(caf::actor_system& system, engine_config config,
                                       backend_factory make_backend,
                                       std::shared_ptr<const detokenizer> detok = nullptr);
  /// Uses an executor in another process (published by `serve_executor`).
  static std::unique_ptr<engine> start(engine_config config, remote_executor_address executor,
                                       std::shared_ptr<const detokenizer> detok = nullptr);

  ~engine(); // stops (aborting live requests) and shuts down its own actor system
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Validates and enqueues a request; its events go to `sink`. Never blocks. On error the
  /// sink is not called.
  submit_result submit(generate_request request, output_sink sink);
  /// Aborts a request: its sink gets a final event with finish_reason abort, and its blocks are
  /// freed within one iteration. Unknown or finished ids are ignored.
  void cancel(uint64_t request_id);
  /// The latest snapshot; never blocks on the actors.
  engine_stats stats() const;
  /// Health check: asks the scheduler actor for its stats (a round trip through the engine's
  /// actors, unlike stats()) and waits at most `timeout`. nullopt when it does not answer in
  /// time or is gone (a wedged or stopped engine). Blocks the calling thread: for /health, not
  /// for the request path. The executor is not asked (it may be busy in a long step).
  std::optional<engine_stats> ping(std::chrono::milliseconds timeout) const;
  /// Exports the K/V of a running request's sequence (n == 1) for migration; `done` is called
  /// once, from an actor thread, with the snapshot or its `error` (not running, n > 1, backend
  /// without KV export, timeout). The request keeps running.
  void export_kv(uint64_t request_id, std::function<void(kv_snapshot&&)> done);
  /// The backend's KV transfer layout, or nullopt when it cannot export/import KV.
  std::optional<kv_transfer_layout> kv_layout() const;
  /// Stops accepting requests and waits up to `timeout` for live ones to finish. True if all did.
  bool drain(std::chrono::milliseconds timeout);
  /// Aborts everything still live and stops the actors. Idempotent.
  void stop();

  const model_config& model() const; // as reported by the executor
  int32_t max_model_len() const;
  kv_cache_shape kv_shape() const;

  struct impl;

private:
  explicit engine(std::unique_ptr<impl> p);
  static std::unique_ptr<engine> start_local(std::unique_ptr<impl> p, const engine_config& config,
                                             backend_factory make_backend, std::shared_ptr<const detokenizer> detok);
  std::unique_ptr<impl> impl_;
};

/// Runs an executor owning the backend (created here through `make_backend`), published with
/// CAF's middleman on `host`:`port` (0: any free port) for a remote engine. Calls `on_listening`
/// with the bound port, then serves until `should_stop` returns true (polled every 100 ms; null:
/// forever). Returns the process exit status.
int serve_executor(backend_factory make_backend, const std::string& host, uint16_t port,
                   const std::function<void(uint16_t port)>& on_listening = nullptr,
                   const std::function<bool()>& should_stop = nullptr);

} // namespace actorserve
