// The exact scan: rows [begin, end) of a store against a subset of prepared
// queries, each hit offered to that query's TopK. Rows the filter refuses are
// skipped before any distance is computed.
#pragma once
#include <cstddef>
#include <cstdint>

#include "store.h"
#include "topk.h"
#include "types.h"

namespace whale::vindex {

// qidx[i] is the query (row of q) whose hits go to *heaps[i].
void scan(const Store& s, const Queries& q, Metric metric, const uint32_t* qidx, size_t nq, size_t begin, size_t end,
          const SearchParams& p, TopK* const* heaps);

// The distance of one stored row to query i, as scan computes it (reference for tests and k-means).
float distance(const Store& s, const Queries& q, Metric metric, size_t query, size_t slot);

}  // namespace whale::vindex
