#pragma once
// GPU memory estimate of serving a model: weights per precision, KV cache, activations, CUDA
// graphs and runtime overhead, and for common GPUs whether it fits and how many sequences of
// a given length the KV cache holds. Pure arithmetic on the config's shapes; no I/O except
// load_estimate_config, which reads a config.json.
//
// Formulas (all per GPU; T = tensor-parallel size, a = activation bytes: 4 for float32, else 2):
//   linear params   = layers * (hidden*q + 2*hidden*kv + q*hidden + 3*hidden*intermediate)
//                     with q = heads*head_dim, kv = kv_heads*head_dim
//   other params    = vocab*hidden (embedding) + vocab*hidden (lm_head unless tied)
//                     + layers*2*hidden (norms) + hidden (final norm)
//                     + layers*(q + 2*kv) if attention_bias + layers*2*head_dim if qk_norm
//   weights         = linear params * bytes(precision) + scale bytes + other params * a
//                     (quantization touches only the decoder's linear layers, as vLLM does):
//                     fp8: 1 B/weight + one fp32 scale per matrix;
//                     int8: 1 B/weight + one fp32 scale per output channel;
//                     int4: 0.5 B/weight + per group of G inputs (G=128) an fp16 scale and a
//                     packed 4-bit zero point (2.5 B per group, 0.0195 B/weight at G=128)
//                     then divided by T (every matrix and the vocabulary are sharded)
//   KV per token    = 2 (K and V) * layers * ceil(kv_heads / T) * head_dim * kv bytes
//   activations     = tokens * (2*hidden + max(2*q + 2*kv, 3*intermediate) / T) * a
//                     + min(max_num_seqs, tokens) * vocab * 8 (fp32 logits and probabilities)
//                     with tokens = max_num_batched_tokens: the largest step's live tensors at
//                     the MLP (residual, normed input, gate|up, activated) or attention peak
//   CUDA graphs     = 512 MiB reserve (graphs of every decode batch size; vLLM logs 0.3 to 1
//                     GiB for 7-14B models) + the graph pool of the largest decode batch,
//                     min(max_num_seqs, 512) tokens of activations as above
//   runtime         = 1 GiB (CUDA context, cuBLAS/cuBLASLt workspaces, allocator slack)
//                     + 512 MiB of NCCL buffers when T > 1
//   budget          = gpu_memory_utilization * GPU memory
//   KV budget       = budget - weights - activations - CUDA graphs - runtime
//   KV blocks       = floor(KV budget / (block_size * KV per token))
//   sequences held  = floor(KV blocks / ceil(max_model_len / block_size))

#include "model/config.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve {

enum class weight_precision { fp32, fp16, bf16, fp8, int8, int4 };

std::string_view precision_name(weight_precision p); // "fp32", "fp16", "bf16", "fp8", "int8", "int4"
/// Accepts the names above plus float32/float16/bfloat16; nullopt when unknown.
std::optional<weight_precision> parse_precision(std::string_view name);

/// A config.json read for estimation: the shapes, plus the quantization of a pre-quantized
/// checkpoint (which parse_model_config refuses for serving, but is fine to size).
struct estimate_config {
  model_config model;
  std::optional<weight_precision> checkpoint_quantization; // from quantization_config
  int64_t checkpoint_group_size = 0;                        // int4 group size, 0 when unknown
};

/// Parses config.json text; quantization_config (fp8, AWQ, GPTQ, compressed-tensors) is read
/// here and removed before parse_model_config sees the rest. Throws model_error.
estimate_config parse_estimate_config(const std::string& json_text);
/// Reads a config.json file, or DIR/config.json when `path` is a folder.
estimate_config load_estimate_config(const std::filesystem::path& path);

struct estimate_options {
  int64_t max_model_len = 0; // 0: the model's max_position_embeddings
  int64_t concurrency = 1;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t block_size = 16;
  int64_t tensor_parallel_size = 1;
  double gpu_memory_utilization = 0.9;
  int64_t int4_group_size = 128;
  /// Activation and KV-cache dtype for the 16-bit and quantized rows: bf16 or fp16.
  weight_precision activation_dtype = weight_precision::bf16;
  /// KV cache element bytes; 0: the activation dtype's (4 for the fp32 row, else 2).
  int64_t kv_cache_bytes = 0;
};

struct parameter_counts {
  int64_t linear = 0; // the decoder's projection matrices (quantizable)
  int64_t other = 0;  // embedding, lm_head, norms, biases
  int64_t linear_scale_matrices = 0;  // number of linear matrices (per-tensor fp8 scales)
  int64_t linear_output_channels = 0; // sum of their output features (int8 channel scales)
  int64_t int4_groups = 0;            // sum over matrices of out * ceil(in / group_size)
  int64_t total() const { return linear + other; }
};

parameter_counts count_parameters(const model_config& c, int64_t int4_group_size);

struct gpu_spec {
  std::string name;     // "H100 80GB"
  double nominal_gb;    // the marketed size
  int64_t memory_bytes; // memory.total as nvidia-smi reports it
  bool fp8;             // native fp8 tensor cores (compute capability 8.9+)
  bool bf16;            // bf16 support (compute capability 8.0+)
};

/// T4 16 GB, L4 24, A10 24, A100 40/80, H100 80, H200 141, B200 192.
const std::vector<gpu_spec>& common_gpus();

struct gpu_fit {
  const gpu_spec* gpu = nullptr;
  int64_t budget_bytes = 0;    // utilization * memory
  int64_t kv_budget_bytes = 0; // negative when the rest does not fit
  int64_t num_kv_blocks = 0;
  int64_t max_sequences = 0; // of max_model_len tokens
  bool fits = false;         // supported, and holds `concurrency` sequences
  std::string note;          // why not, when it does not
};

struct precision_estimate {
  weight_precision precision = weight_precision::bf16;
  int64_t weight_bytes = 0;
  int64_t activation_bytes = 0;
  int64_t cuda_graph_bytes = 0;
  int64_t runtime_bytes = 0;
  int64_t kv_bytes_per_token = 0;
  int64_t kv_bytes_per_sequence = 0; // max_model_len tokens, rounded up to whole blocks
  int64_t kv_bytes = 0;              // concurrency sequences
  int64_t total_bytes = 0;           // everything above, per GPU
  std::vector<gpu_fit> gpus;         // one per common_gpus() entry
};

struct memory_estimate {
  parameter_counts params;
  estimate_options options; // with max_model_len resolved
  std::vector<precision_estimate> precisions; // fp32, fp16/bf16 (activation dtype), fp8, int8, int4
};

/// Throws model_error for options that make no sense (zero lengths, utilization outside
/// (0, 1], a tensor-parallel size that does not divide the attention heads).
memory_estimate estimate_memory(const model_config& c, estimate_options options);

/// The estimate of one precision for one GPU memory size (bytes); used for common_gpus() and
/// by callers who know their GPU's exact size.
gpu_fit fit_on_gpu(const precision_estimate& p, const estimate_options& o, int64_t memory_bytes);

} // namespace actorserve
