// Row gather (embedding lookup). Pure data movement: 16-byte accesses whenever the row size
// allows, one block per output row.
#include "gpu/cuda_check.hpp"
#include "gpu/embedding.hpp"
#include "gpu/pdl.cuh"

#include <cuda_runtime.h>

namespace actorserve::gpu {
namespace {

template <typename V>
__global__ void gather_rows_kernel(V* __restrict__ out, const V* __restrict__ table, const int32_t* __restrict__ ids,
                                   int64_t row_vecs, int64_t table_rows) {
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
  const int64_t row = blockIdx.x;
  const int32_t id = ids[row];
  V* dst = out + row * row_vecs;
  if (id < 0 || id >= table_rows) {
    for (int64_t i = threadIdx.x; i < row_vecs; i += blockDim.x)
      dst[i] = V{};
    return;
  }
  const V* src = table + int64_t(id) * row_vecs;
  for (int64_t i = threadIdx.x; i < row_vecs; i += blockDim.x)
    dst[i] = src[i];
}

template <typename V>
void launch_gather(void* out, const void* table, const int32_t* ids, int64_t num_rows, int64_t row_bytes,
                   int64_t table_rows, cudaStream_t stream) {
  const int64_t row_vecs = row_bytes / int64_t(sizeof(V));
  const int threads = int(row_vecs >= 256 ? 256 : ((row_vecs + 31) / 32) * 32);
  launch_pdl(gather_rows_kernel<V>, dim3(unsigned(num_rows)), dim3(unsigned(threads)), 0, stream, static_cast<V*>(out),
             static_cast<const V*>(table), ids, row_vecs, table_rows);
  ACTORSERVE_CUDA_CHECK_LAUNCH("gather_rows_kernel");
}

bool aligned(const void* p, size_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; }

} // namespace

void launch_embedding(void* out, const void* table, const int32_t* ids, int64_t num_rows, int64_t row_size,
                      int64_t table_rows, dtype type, cudaStream_t stream) {
  if (num_rows <= 0)
    return;
  const int64_t row_bytes = row_size * int64_t(dtype_size(type));
  if (row_bytes % 16 == 0 && aligned(out, 16) && aligned(table, 16))
    launch_gather<uint4>(out, table, ids, num_rows, row_bytes, table_rows, stream);
  else if (row_bytes % 4 == 0 && aligned(out, 4) && aligned(table, 4))
    launch_gather<uint32_t>(out, table, ids, num_rows, row_bytes, table_rows, stream);
  else
    launch_gather<uint16_t>(out, table, ids, num_rows, row_bytes, table_rows, stream);
}

} // namespace actorserve::gpu
