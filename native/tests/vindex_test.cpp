// native/vindex against a plain double-precision brute force.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../quant/codec.h"
#include "../vindex/index.h"
#include "check.h"

using namespace whale;
using namespace whale::vindex;

namespace {

std::vector<float> randoms(size_t n, uint32_t seed, bool integers = false) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> ud(-4, 4);
  std::vector<float> x(n);
  for (float& v : x) v = integers ? static_cast<float>(ud(g)) : nd(g);
  return x;
}

double ref_distance(Metric m, const float* q, const float* x, uint32_t dim) {
  double dot = 0, qn = 0, xn = 0, l2 = 0;
  for (uint32_t j = 0; j < dim; ++j) {
    dot += double{q[j]} * x[j], qn += double{q[j]} * q[j], xn += double{x[j]} * x[j];
    l2 += (double{q[j]} - x[j]) * (double{q[j]} - x[j]);
  }
  if (m == Metric::kL2) return l2;
  if (m == Metric::kIP) return -dot;
  return 1 - dot / std::sqrt(qn * xn);
}

// Best k labels of rows (all labels 0..n-1 unless skip says so) by (distance, label).
std::vector<uint32_t> ref_topk(Metric m, const float* q, const std::vector<float>& rows, uint32_t dim, uint32_t k,
                               const std::vector<bool>& skip = {}) {
  std::vector<std::pair<double, uint32_t>> all;
  for (uint32_t i = 0; i < rows.size() / dim; ++i) {
    if (!skip.empty() && skip[i]) continue;
    all.push_back({ref_distance(m, q, rows.data() + size_t{i} * dim, dim), i});
  }
  std::sort(all.begin(), all.end());
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < k && i < all.size(); ++i) out.push_back(all[i].second);
  return out;
}

std::vector<uint32_t> iota_labels(size_t n) {
  std::vector<uint32_t> l(n);
  for (size_t i = 0; i < n; ++i) l[i] = static_cast<uint32_t>(i);
  return l;
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const EngineError& e) {
    return e.code() + " " + e.what();
  }
  return "";
}

void exact_matches_reference(Metric m, Storage storage, bool integers, bool parallel) {
  const uint32_t dim = 40, n = 3001, nq = 37, k = 7;
  std::vector<float> rows = randoms(size_t{n} * dim, 1, integers), qs = randoms(size_t{nq} * dim, 2, integers);
  IndexConfig c;
  c.dim = dim, c.metric = m, c.storage = storage, c.block_size = 32;
  Index index(c);
  index.add(iota_labels(n).data(), n, rows.data());
  // For int8 the reference runs on the decoded rows (what the codes stand for).
  std::vector<float> ref_rows = rows;
  if (storage == Storage::kInt8) {
    quant::EncodeOptions o;
    o.block_size = 32;
    std::vector<uint8_t> blob(quant::encoded_size(o, dim));
    for (uint32_t i = 0; i < n; ++i) {
      quant::encode(o, rows.data() + size_t{i} * dim, dim, blob.data());
      quant::decode(blob.data(), blob.size(), ref_rows.data() + size_t{i} * dim);
    }
  }
  SearchParams p;
  p.k = k, p.parallel = parallel;
  std::vector<uint32_t> labels(nq * k);
  std::vector<float> dists(nq * k);
  index.search(qs.data(), nq, p, labels.data(), dists.data());
  size_t same = 0, total = 0;
  bool dist_ok = true;
  for (uint32_t q = 0; q < nq; ++q) {
    const std::vector<uint32_t> want = ref_topk(m, qs.data() + size_t{q} * dim, ref_rows, dim, k);
    for (uint32_t i = 0; i < k; ++i) {
      same += labels[q * k + i] == want[i];
      ++total;
      const double d =
          ref_distance(m, qs.data() + size_t{q} * dim, ref_rows.data() + size_t{labels[q * k + i]} * dim, dim);
      const double tol = (storage == Storage::kInt8 ? 2e-3 : 1e-4) * (1 + std::fabs(d)) * (m == Metric::kL2 ? 10 : 1);
      dist_ok &= std::fabs(d - dists[q * k + i]) <= tol;
    }
  }
  const std::string what = "metric " + std::to_string(int(m)) + " storage " + std::to_string(int(storage)) +
                           (integers ? " integers" : " normals");
  // Integer f32 data is exact in float: the results must equal the reference, ties included.
  if (integers && storage == Storage::kF32) CHECK(same == total, ("exact equality, " + what).c_str());
  else
    CHECK(same >= total * 97 / 100,
          ("near-identical results, " + what + ": " + std::to_string(same) + "/" + std::to_string(total)).c_str());
  CHECK(dist_ok, ("distances match the reference, " + what).c_str());
}

void deletes_filters_and_replacement() {
  const uint32_t dim = 16, n = 500;
  std::vector<float> rows = randoms(size_t{n} * dim, 3, true);
  IndexConfig c;
  c.dim = dim;
  Index index(c);
  index.add(iota_labels(n).data(), n, rows.data());
  std::vector<uint32_t> gone;
  for (uint32_t i = 0; i < n; i += 3) gone.push_back(i);
  CHECK(index.remove(gone.data(), gone.size()) == gone.size(), "remove counts the present labels");
  CHECK(index.remove(gone.data(), 1) == 0, "removing again finds nothing");
  std::vector<uint8_t> allow((n + 7) / 8, 0);
  std::vector<bool> skip(n, false);
  for (uint32_t i = 0; i < n; ++i) {
    if (i % 3 == 0 || i % 5 == 0) skip[i] = true;
    else allow[i / 8] |= uint8_t(1u << (i % 8));
  }
  SearchParams p;
  p.k = 20, p.allow = allow.data(), p.allow_bytes = allow.size();
  std::vector<uint32_t> labels(20);
  std::vector<float> dists(20);
  const float* q = rows.data() + 7 * dim;
  index.search(q, 1, p, labels.data(), dists.data());
  CHECK(labels == ref_topk(Metric::kL2, q, rows, dim, 20, skip),
        "filtered search = reference over the allowed, live rows");
  // Replacing a label moves it.
  std::vector<float> far(dim, 1000.f);
  const uint32_t l7 = 7;
  index.add(&l7, 1, far.data());
  p.allow = nullptr;
  index.search(q, 1, p, labels.data(), dists.data());
  CHECK(std::find(labels.begin(), labels.end(), 7u) == labels.end(), "a replaced row is searched with its new vector");
  CHECK(index.size() == n - gone.size(), "size counts live rows");
}

void ivf_behaves() {
  const uint32_t dim = 24, n = 4000, nq = 50, k = 10;
  std::vector<float> rows = randoms(size_t{n} * dim, 4), qs = randoms(size_t{nq} * dim, 5);
  for (Storage st : {Storage::kF32, Storage::kInt8}) {
    IndexConfig c;
    c.dim = dim, c.nlist = 32, c.nprobe = 4, c.storage = st;
    Index flat(c), ivf(c);
    flat.add(iota_labels(n).data(), n, rows.data());
    ivf.add(iota_labels(n).data(), n, rows.data());
    ivf.train(nullptr, 0, 10, 42, true);
    CHECK(ivf.trained() && ivf.size() == n, "training keeps every row");
    SearchParams p;
    p.k = k;
    std::vector<uint32_t> a(nq * k), b(nq * k);
    std::vector<float> da(nq * k), db(nq * k);
    flat.search(qs.data(), nq, p, a.data(), da.data());
    p.nprobe = 32;
    ivf.search(qs.data(), nq, p, b.data(), db.data());
    CHECK(a == b && da == db, "nprobe = nlist gives the exact results");
    p.nprobe = 1;
    ivf.search(qs.data(), nq, p, b.data(), db.data());
    size_t hit = 0;
    for (uint32_t q = 0; q < nq; ++q)
      for (uint32_t i = 0; i < k; ++i) hit += std::count(a.begin() + q * k, a.begin() + (q + 1) * k, b[q * k + i]);
    CHECK(hit < size_t{nq} * k, "nprobe 1 is approximate on unclustered data");
    // Adds after training land in lists; deletes never come back.
    std::vector<float> extra = randoms(size_t{100} * dim, 6);
    std::vector<uint32_t> el(100);
    for (uint32_t i = 0; i < 100; ++i) el[i] = n + i;
    ivf.add(el.data(), 100, extra.data());
    ivf.remove(el.data(), 50);
    p.nprobe = 32, p.k = 1;
    std::vector<uint32_t> one(1);
    std::vector<float> od(1);
    ivf.search(extra.data(), 1, p, one.data(), od.data());
    CHECK(one[0] != n, "a deleted row is never returned");
    ivf.search(extra.data() + 60 * dim, 1, p, one.data(), od.data());
    CHECK(one[0] == n + 60, "a row added after training is found");
    // Same data, same seed: the same index.
    Index again(c);
    again.add(iota_labels(n).data(), n, rows.data());
    again.train(nullptr, 0, 10, 42, false);
    p.k = k, p.nprobe = 2;
    ivf.remove(el.data() + 50, 50);
    again.search(qs.data(), nq, p, a.data(), da.data());
    ivf.search(qs.data(), nq, p, b.data(), db.data());
    CHECK(a == b, "rebuilding with the same seed gives the same results");
    // Saved centroids restore the same lists (cosine too: they are not normalized again).
    for (Metric m : {Metric::kL2, Metric::kCosine}) {
      IndexConfig rc = c;
      rc.metric = m;
      Index trained(rc), restored(rc);
      trained.add(iota_labels(n).data(), n, rows.data());
      trained.train(nullptr, 0, 5, 3, true);
      const std::vector<float> cent = trained.centroids();
      restored.train(cent.data(), rc.nlist, 0, 0, true);
      restored.add(iota_labels(n).data(), n, rows.data());
      CHECK(restored.centroids() == cent, "restored centroids are the saved ones");
      trained.search(qs.data(), nq, p, a.data(), da.data());
      restored.search(qs.data(), nq, p, b.data(), db.data());
      CHECK(a == b && da == db, ("restored centroids give the same results, metric " + std::to_string(int(m)) +
                                 " storage " + std::to_string(int(st)))
                                    .c_str());
    }
  }
}

void blobs_and_errors() {
  const uint32_t dim = 50;
  std::vector<float> rows = randoms(size_t{20} * dim, 7);
  IndexConfig c;
  c.dim = dim, c.storage = Storage::kInt8, c.block_size = 32;
  Index from_floats(c), from_blobs(c);
  from_floats.add(iota_labels(20).data(), 20, rows.data());
  quant::EncodeOptions o;
  o.block_size = 32;
  std::vector<std::vector<uint8_t>> blobs(20, std::vector<uint8_t>(quant::encoded_size(o, dim)));
  std::vector<const uint8_t*> ptrs;
  std::vector<size_t> sizes;
  for (uint32_t i = 0; i < 20; ++i) {
    quant::encode(o, rows.data() + size_t{i} * dim, dim, blobs[i].data());
    ptrs.push_back(blobs[i].data());
    sizes.push_back(blobs[i].size());
  }
  from_blobs.add_blobs(iota_labels(20).data(), 20, ptrs.data(), sizes.data());
  SearchParams p;
  p.k = 20;
  std::vector<uint32_t> a(20), b(20);
  std::vector<float> da(20), db(20);
  from_floats.search(rows.data(), 1, p, a.data(), da.data());
  from_blobs.search(rows.data(), 1, p, b.data(), db.data());
  CHECK(a == b && da == db, "an int8 blob and its float source are the same row");

  blobs[3][40] ^= 1;
  const std::string corrupt =
      error_of([&] { from_blobs.add_blobs(iota_labels(20).data(), 20, ptrs.data(), sizes.data()); });
  CHECK(corrupt.rfind("ERR_CHECKSUM blobs[3]:", 0) == 0,
        ("a damaged blob is a typed error naming it: " + corrupt).c_str());
  rows[5 * dim + 2] = NAN;
  Index f(c);
  const std::string nan = error_of([&] { f.add(iota_labels(20).data(), 20, rows.data()); });
  CHECK(nan.rfind("ERR_NON_FINITE vectors[5]: value 2 is NaN", 0) == 0, ("NaN names the vector: " + nan).c_str());
  CHECK(f.size() == 0, "a refused batch stores nothing");
  const std::string dup = error_of([&] {
    const uint32_t l[2] = {4, 4};
    f.add(l, 2, rows.data());
  });
  CHECK(dup.rfind("ERR_INVALID_ARG labels[1]", 0) == 0, "duplicate labels are refused");
  IndexConfig bad = c;
  bad.block_size = 33;
  CHECK(error_of([&] { Index x(bad); }).rfind("ERR_INVALID_ARG blockSize", 0) == 0, "odd block size refused");
  bad = c;
  bad.dim = 0;
  CHECK(error_of([&] { Index x(bad); }).rfind("ERR_INVALID_ARG dim", 0) == 0, "dim 0 refused");
  IndexConfig cc;
  cc.dim = 4, cc.metric = Metric::kCosine;
  Index cos(cc);
  const float zero[4] = {0, 0, 0, 0};
  const uint32_t l0 = 0;
  CHECK(error_of([&] { cos.add(&l0, 1, zero); }).rfind("ERR_INVALID_ARG vectors[0]", 0) == 0,
        "cosine refuses a zero vector");
  std::vector<uint32_t> out(5);
  std::vector<float> od(5);
  p.k = 5;
  cos.search(rows.data(), 1, p, out.data(), od.data());
  CHECK(out[0] == kNoLabel && std::isnan(od[0]), "an empty index pads results");
}

}  // namespace

int main() {
  for (Metric m : {Metric::kL2, Metric::kIP, Metric::kCosine}) {
    for (Storage s : {Storage::kF32, Storage::kInt8}) {
      exact_matches_reference(m, s, true, true);
      exact_matches_reference(m, s, false, false);
    }
  }
  deletes_filters_and_replacement();
  ivf_behaves();
  blobs_and_errors();
  return report();
}
