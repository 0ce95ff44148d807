// Built when nvcc is absent: every CUDA entry point reports that clearly.
#include "../common/error.h"
#include "aggregate_cuda.h"

namespace whale::aggregate::cuda {
namespace {
[[noreturn]] void unavailable() { throw EngineError(kErrDeviceUnavailable, "device: this build has no CUDA kernels"); }
}  // namespace

void fedavg(int, const ClientUpdates&, const std::vector<double>&, float*) { unavailable(); }
void coordinate_median(int, const ClientUpdates&, float*) { unavailable(); }
void trimmed_mean(int, const ClientUpdates&, double, float*) { unavailable(); }
void pairwise_sq_distances(int, const ClientUpdates&, double*) { unavailable(); }
void server_opt_step(int, const ServerOptConfig&, float*, const float*, float*, float*, size_t) { unavailable(); }

}  // namespace whale::aggregate::cuda
