// Stands in for CUDA's <cuda_runtime.h> in the emulated build of the .cu files (cuemu.h).
#pragma once
#include "cuemu.h"
