#include "index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>
#include <unordered_set>

#include "../common/error.h"
#include "../common/thread_pool.h"
#include "../quant/codec.h"
#include "kmeans.h"
#include "scan.h"

namespace whale::vindex {
namespace {

[[noreturn]] void invalid(const std::string& msg) { throw EngineError(kErrInvalidArg, msg); }

std::string at(const char* field, size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

constexpr size_t kMaxTrainRows = 256;  // per list: more samples barely move the centroids

Store make_store(const IndexConfig& c) { return Store(c.storage, c.dim, c.block_size); }

const IndexConfig& validated(const IndexConfig& c) {
  if (c.dim == 0 || c.dim > kMaxDim) invalid("dim: must be an integer in [1, 65536], got " + std::to_string(c.dim));
  if (static_cast<uint8_t>(c.metric) > 2) invalid("metric: must be l2, ip or cosine");
  if (static_cast<uint8_t>(c.storage) > 1) invalid("storage: must be f32 or int8");
  if (c.block_size < quant::kMinBlock || c.block_size > quant::kMaxBlock || c.block_size % 2) {
    invalid("blockSize: must be an even number in [32, 4096], got " + std::to_string(c.block_size));
  }
  if (c.nlist > (1u << 20)) invalid("nlist: at most 2^20 lists, got " + std::to_string(c.nlist));
  if (c.nprobe == 0) invalid("nprobe: must be >= 1");
  return c;
}

}  // namespace

Index::Index(const IndexConfig& config)
    : cfg_(validated(config)), proto_(make_store(cfg_)), centroids_(Storage::kF32, cfg_.dim, 64) {
  lists_.push_back(make_store(cfg_));
}

size_t Index::size() const {
  std::shared_lock lock(mutex_);
  return where_.size();
}

bool Index::trained() const {
  std::shared_lock lock(mutex_);
  return trained_;
}

bool Index::contains(uint32_t label) const {
  std::shared_lock lock(mutex_);
  return where_.count(label) != 0;
}

size_t Index::memory_bytes() const {
  std::shared_lock lock(mutex_);
  size_t bytes = centroids_.memory_bytes() + where_.size() * (sizeof(uint32_t) + sizeof(Where) + 16);
  for (const Store& s : lists_) bytes += s.memory_bytes();
  return bytes;
}

void Index::check_vectors(const float* x, size_t n, const char* field) const {
  for (size_t i = 0; i < n; ++i) {
    const float* v = x + i * cfg_.dim;
    bool nonzero = false;
    for (uint32_t j = 0; j < cfg_.dim; ++j) {
      if (!std::isfinite(v[j])) {
        throw EngineError(kErrNonFinite, at(field, i) + ": value " + std::to_string(j) + " is " +
                                             (std::isnan(v[j]) ? "NaN" : "infinite"));
      }
      nonzero |= v[j] != 0.f;
    }
    if (!nonzero && cfg_.metric == Metric::kCosine)
      invalid(at(field, i) + ": a zero vector has no direction (metric cosine)");
  }
}

void Index::check_labels(const uint32_t* labels, size_t n) const {
  std::unordered_set<uint32_t> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] == kNoLabel) invalid(at("labels", i) + ": 4294967295 is reserved");
    if (!seen.insert(labels[i]).second)
      invalid(at("labels", i) + ": label " + std::to_string(labels[i]) + " appears twice in one call");
  }
}

std::vector<float> Index::coarse_copy(const float* x, size_t n) const {
  std::vector<float> out(x, x + n * cfg_.dim);
  if (cfg_.metric != Metric::kCosine) return out;
  for (size_t i = 0; i < n; ++i) {
    float* v = out.data() + i * cfg_.dim;
    double n2 = 0;
    for (uint32_t j = 0; j < cfg_.dim; ++j) n2 += double{v[j]} * v[j];
    const float inv = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.f;
    for (uint32_t j = 0; j < cfg_.dim; ++j) v[j] *= inv;
  }
  return out;
}

uint32_t Index::list_for(const float* x) const {
  if (!trained_) return 0;
  const std::vector<float> c = coarse_copy(x, 1);
  const Queries q = centroids_.prepare(c.data(), 1, false);
  TopK h(1);
  TopK* hp = &h;
  const uint32_t qi = 0;
  scan(centroids_, q, Metric::kL2, &qi, 1, 0, centroids_.rows(), SearchParams{}, &hp);
  return h.hits().front().label;
}

void Index::erase(uint32_t label) {
  const auto it = where_.find(label);
  if (it == where_.end()) return;
  const Where w = it->second;
  where_.erase(it);
  const uint32_t moved = lists_[w.list].remove_at(w.slot);
  if (moved != kNoLabel) where_[moved].slot = w.slot;
}

void Index::insert(uint32_t label, const float* x, const int8_t* codes, const float* scales) {
  erase(label);
  if (cfg_.storage == Storage::kInt8 && !codes && trained_) {
    // Quantize first and pick the list by what is stored, as train() does.
    Store one = make_store(cfg_);
    one.push_f32(label, x);
    std::vector<float> stored(cfg_.dim);
    one.decode_row(0, stored.data());
    Store& s = lists_[list_for(stored.data())];
    s.push_copy(one, 0);
    where_[label] = Where{static_cast<uint32_t>(&s - lists_.data()), static_cast<uint32_t>(s.rows() - 1)};
    return;
  }
  const uint32_t list = list_for(x);
  Store& s = lists_[list];
  if (codes) {
    s.push_codes(label, codes, scales);
  } else {
    s.push_f32(label, x);
  }
  where_[label] = Where{list, static_cast<uint32_t>(s.rows() - 1)};
}

void Index::add(const uint32_t* labels, size_t n, const float* x) {
  check_labels(labels, n);
  check_vectors(x, n, "vectors");
  std::unique_lock lock(mutex_);
  for (size_t i = 0; i < n; ++i) insert(labels[i], x + i * cfg_.dim, nullptr, nullptr);
}

void Index::add_blobs(const uint32_t* labels, size_t n, const uint8_t* const* blobs, const size_t* sizes) {
  check_labels(labels, n);
  // Decode or validate every blob before storing any.
  struct Parsed {
    std::vector<float> values;  // decoded (or, for stored-as-is int8, for list assignment)
    const int8_t* codes = nullptr;
    const float* scales = nullptr;
  };
  std::vector<Parsed> parsed(n);
  for (size_t i = 0; i < n; ++i) {
    quant::BlobInfo info;
    try {
      info = quant::inspect(blobs[i], sizes[i], false);
    } catch (const EngineError& e) {
      throw EngineError(e.code(), at("blobs", i) + ": " + e.what());
    }
    if (info.length != cfg_.dim) {
      invalid(at("blobs", i) + ": holds " + std::to_string(info.length) + " values, the index has dim " +
              std::to_string(cfg_.dim));
    }
    Parsed& p = parsed[i];
    p.values.resize(cfg_.dim);
    quant::decode(blobs[i], sizes[i], p.values.data(), false);
    if (cfg_.storage == Storage::kInt8 && info.codec == quant::Codec::kInt8 && info.block_size == cfg_.block_size) {
      p.scales = reinterpret_cast<const float*>(blobs[i] + quant::kHeaderBytes);
      p.codes = reinterpret_cast<const int8_t*>(blobs[i] + quant::kHeaderBytes + proto_.layout().blocks * 4);
    }
    try {
      check_vectors(p.values.data(), 1, "blobs");
    } catch (const EngineError& e) {
      throw EngineError(e.code(), std::string(e.what()).replace(0, 8, at("blobs", i)));
    }
  }
  std::unique_lock lock(mutex_);
  for (size_t i = 0; i < n; ++i) {
    Parsed& p = parsed[i];
    if (p.codes) {
      // The blob's scales may be unaligned: copy them out.
      std::vector<float> scales(proto_.layout().blocks);
      std::memcpy(scales.data(), p.scales, scales.size() * 4);
      insert(labels[i], p.values.data(), p.codes, scales.data());
    } else {
      insert(labels[i], p.values.data(), nullptr, nullptr);
    }
  }
}

size_t Index::remove(const uint32_t* labels, size_t n) {
  std::unique_lock lock(mutex_);
  size_t removed = 0;
  for (size_t i = 0; i < n; ++i) {
    removed += where_.count(labels[i]);
    erase(labels[i]);
  }
  return removed;
}

void Index::set_nprobe(uint32_t nprobe) {
  if (nprobe == 0) invalid("nprobe: must be >= 1");
  std::unique_lock lock(mutex_);
  cfg_.nprobe = nprobe;
}

std::vector<float> Index::centroids() const {
  std::shared_lock lock(mutex_);
  std::vector<float> out(centroids_.rows() * cfg_.dim);
  for (size_t i = 0; i < centroids_.rows(); ++i) centroids_.decode_row(i, out.data() + i * cfg_.dim);
  return out;
}

void Index::train(const float* samples, size_t n, uint32_t iterations, uint64_t seed, bool parallel) {
  if (cfg_.nlist == 0) invalid("nlist: this index has no inverted lists (nlist 0)");
  if (samples) check_vectors(samples, n, "samples");
  std::unique_lock lock(mutex_);
  std::vector<float> own;
  if (!samples) {
    // Every stored row, or an even stride through them when there are many.
    const size_t total = where_.size(), want = std::min(total, size_t{kMaxTrainRows} * cfg_.nlist);
    own.resize(want * cfg_.dim);
    size_t seen = 0, taken = 0;
    for (const Store& s : lists_) {
      for (size_t slot = 0; slot < s.rows(); ++slot, ++seen) {
        if (taken < want && seen * want / total == taken) s.decode_row(slot, own.data() + (taken++) * cfg_.dim);
      }
    }
    samples = own.data();
    n = want;
  }
  if (n < cfg_.nlist) {
    invalid("samples: training " + std::to_string(cfg_.nlist) + " lists needs at least that many vectors, got " +
            std::to_string(n));
  }
  // Restoring saved centroids (no iterations, nlist points): they are already in the coarse space.
  const bool restore = iterations == 0 && n == cfg_.nlist;
  const std::vector<float> coarse =
      restore ? std::vector<float>(samples, samples + n * cfg_.dim) : coarse_copy(samples, n);
  const std::vector<float> c = kmeans(coarse.data(), n, cfg_.dim, cfg_.nlist, iterations, seed, parallel);
  Store centroids(Storage::kF32, cfg_.dim, 64);
  centroids.reserve(cfg_.nlist);
  for (uint32_t i = 0; i < cfg_.nlist; ++i) centroids.push_f32(i, c.data() + size_t{i} * cfg_.dim);

  // Move every row into its list, keeping its stored bits.
  std::vector<Store> lists(cfg_.nlist, make_store(cfg_));
  std::vector<float> rows;
  for (const Store& s : lists_) {
    constexpr size_t kChunk = 4096;
    for (size_t lo = 0; lo < s.rows(); lo += kChunk) {
      const size_t hi = std::min(s.rows(), lo + kChunk);
      rows.resize((hi - lo) * cfg_.dim);
      for (size_t slot = lo; slot < hi; ++slot) s.decode_row(slot, rows.data() + (slot - lo) * cfg_.dim);
      const std::vector<float> cr = coarse_copy(rows.data(), hi - lo);
      const std::vector<uint32_t> to = nearest_centroids(c, cfg_.nlist, cr.data(), hi - lo, cfg_.dim, parallel);
      for (size_t slot = lo; slot < hi; ++slot) {
        Store& dst = lists[to[slot - lo]];
        dst.push_copy(s, slot);
        where_[s.label(slot)] = Where{to[slot - lo], static_cast<uint32_t>(dst.rows() - 1)};
      }
    }
  }
  lists_ = std::move(lists);
  centroids_ = std::move(centroids);
  trained_ = true;
}

void Index::search(const float* queries, size_t nq, const SearchParams& p, uint32_t* labels, float* dists) const {
  if (p.k == 0 || p.k > kMaxK) invalid("k: must be an integer in [1, 4096], got " + std::to_string(p.k));
  check_vectors(queries, nq, "queries");
  std::shared_lock lock(mutex_);
  const Queries pq = proto_.prepare(queries, nq, p.parallel);
  const bool ivf = trained_ && !p.exact;
  const uint32_t np = ivf ? std::min(p.nprobe ? p.nprobe : cfg_.nprobe, cfg_.nlist) : 0;
  std::vector<uint32_t> probes;  // nq x np list ids
  ThreadPool& pool = ThreadPool::shared();
  if (ivf) {
    probes.resize(nq * np);
    const std::vector<float> coarse = coarse_copy(queries, nq);
    auto probe = [&](size_t lo, size_t hi) {
      const Queries cq = centroids_.prepare(coarse.data() + lo * cfg_.dim, hi - lo, false);
      std::vector<uint32_t> idx(hi - lo);
      std::iota(idx.begin(), idx.end(), 0u);
      std::vector<TopK> heaps(hi - lo, TopK(np));
      std::vector<TopK*> ptrs;
      for (TopK& h : heaps) ptrs.push_back(&h);
      scan(centroids_, cq, Metric::kL2, idx.data(), idx.size(), 0, centroids_.rows(), SearchParams{}, ptrs.data());
      std::vector<uint32_t> lab(np);
      std::vector<float> dist(np);
      for (size_t i = lo; i < hi; ++i) {
        heaps[i - lo].write(lab.data(), dist.data());
        std::copy(lab.begin(), lab.end(), probes.begin() + i * np);
      }
    };
    if (p.parallel && nq >= 64) pool.parallel_for(nq, 32, probe);
    else if (nq > 0) probe(0, nq);
  }

  const size_t threads = p.parallel ? pool.concurrency() : 1;
  size_t rows = 0;
  for (const Store& s : lists_) rows += s.rows();
  const double work = double(nq) * double(ivf ? rows * np / std::max(1u, cfg_.nlist) : rows) * cfg_.dim;
  const bool split = threads > 1 && work > double(1 << 20);
  const size_t chunks = split && nq >= 2 * threads ? std::min(nq, 4 * threads) : 1;
  const size_t parts = split && chunks == 1 ? threads : 1;
  const size_t jobs = chunks * parts;
  std::vector<std::vector<TopK>> heaps(jobs);
  auto job = [&](size_t j) {
    const size_t c = j / parts, part = j % parts;
    const size_t qa = nq * c / chunks, qb = nq * (c + 1) / chunks;
    std::vector<TopK>& local = heaps[j];
    local.assign(qb - qa, TopK(p.k));
    if (!ivf) {
      std::vector<uint32_t> idx(qb - qa);
      std::iota(idx.begin(), idx.end(), static_cast<uint32_t>(qa));
      std::vector<TopK*> ptrs;
      for (TopK& h : local) ptrs.push_back(&h);
      for (const Store& s : lists_) {
        scan(s, pq, cfg_.metric, idx.data(), idx.size(), s.rows() * part / parts, s.rows() * (part + 1) / parts, p,
             ptrs.data());
      }
      return;
    }
    // Group this chunk's queries by list, so each list's rows serve all of them at once.
    std::vector<std::vector<uint32_t>> bucket(cfg_.nlist);
    for (size_t qi = qa; qi < qb; ++qi) {
      for (uint32_t t = 0; t < np; ++t) {
        const uint32_t l = probes[qi * np + t];
        if (l != kNoLabel && l % parts == part) bucket[l].push_back(static_cast<uint32_t>(qi));
      }
    }
    std::vector<TopK*> ptrs;
    for (uint32_t l = 0; l < cfg_.nlist; ++l) {
      if (bucket[l].empty()) continue;
      ptrs.clear();
      for (uint32_t qi : bucket[l]) ptrs.push_back(&local[qi - qa]);
      scan(lists_[l], pq, cfg_.metric, bucket[l].data(), bucket[l].size(), 0, lists_[l].rows(), p, ptrs.data());
    }
  };
  if (jobs > 1) {
    pool.parallel_for(jobs, 1, [&](size_t lo, size_t hi) {
      for (size_t j = lo; j < hi; ++j) job(j);
    });
  } else {
    job(0);
  }
  for (size_t c = 0; c < chunks; ++c) {
    const size_t qa = nq * c / chunks, qb = nq * (c + 1) / chunks;
    for (size_t qi = qa; qi < qb; ++qi) {
      TopK& h = heaps[c * parts][qi - qa];
      for (size_t part = 1; part < parts; ++part) h.merge(heaps[c * parts + part][qi - qa]);
      h.write(labels + qi * p.k, dists + qi * p.k);
    }
  }
}

}  // namespace whale::vindex
