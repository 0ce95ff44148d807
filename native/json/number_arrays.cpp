#include "number_arrays.h"

#include <charconv>
#include <cmath>
#include <system_error>

namespace whale::json {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

size_t skip_ws(std::string_view d, size_t i) {
  while (i < d.size() && is_ws(d[i])) ++i;
  return i;
}

constexpr double kExact10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Parses the JSON number starting at i into v; returns the index after it, or npos when the
// bytes there are not a JSON number or its value is not a finite double.
size_t parse_number(std::string_view d, size_t i, double& v) {
  const char* const begin = d.data();
  const char* const end = begin + d.size();
  const char* p = begin + i;
  const char* const start = p;
  const bool negative = p < end && *p == '-';
  if (negative) ++p;
  if (p >= end || !is_digit(*p)) return std::string_view::npos;
  // All significant digits up to 19 (< 10^19 < 2^64); past 19 the value goes to from_chars.
  uint64_t mantissa = 0;
  int significant = 0, exp10 = 0;
  if (*p == '0') {
    ++p;
  } else {
    for (; p < end && is_digit(*p); ++p) {
      if (significant < 19) {
        mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
        ++significant;
      } else {
        significant = 20;  // a dropped digit: from_chars parses the number instead
      }
    }
  }
  if (p < end && *p == '.') {
    ++p;
    if (p >= end || !is_digit(*p)) return std::string_view::npos;
    if (mantissa == 0)  // leading zeros of a fraction only move the point
      for (; p < end && *p == '0'; ++p) --exp10;
    for (; p < end && is_digit(*p); ++p) {
      if (significant < 19) {
        mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
        ++significant;
        --exp10;
      } else {
        significant = 20;
      }
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    bool neg_exp = false;
    if (p < end && (*p == '+' || *p == '-')) neg_exp = *p++ == '-';
    if (p >= end || !is_digit(*p)) return std::string_view::npos;
    int e = 0;
    for (; p < end && is_digit(*p); ++p)
      if (e < 100000) e = e * 10 + (*p - '0');
    exp10 += neg_exp ? -e : e;
  }
  // Clinger's fast path: a mantissa exact in a double (<= 2^53, every digit kept) and an exact
  // power of ten make one correctly rounded IEEE operation. Everything else goes to from_chars
  // (correctly rounded).
  if (significant <= 19 && mantissa <= (uint64_t{1} << 53) && (mantissa == 0 || (exp10 >= -22 && exp10 <= 22))) {
    const double m = static_cast<double>(mantissa);
    v = mantissa == 0 ? 0.0 : exp10 < 0 ? m / kExact10[-exp10] : m * kExact10[exp10];
    if (negative) v = -v;
    return static_cast<size_t>(p - begin);
  }
  const auto r = std::from_chars(start, p, v);
  // Out of range (overflow, or underflow that from_chars reports) goes to the JSON parser.
  if (r.ec != std::errc() || r.ptr != p || !std::isfinite(v)) return std::string_view::npos;
  return static_cast<size_t>(p - begin);
}

// Parses the array whose '[' is at `open` into out.values; returns the index after its ']',
// or npos (out.values back to its old size) when it is not a flat array of numbers.
size_t parse_array(std::string_view d, size_t open, NumberArrays& out) {
  const size_t mark = out.values.size();
  size_t i = skip_ws(d, open + 1);
  if (i < d.size() && d[i] == ']') return i + 1;
  for (;;) {
    double v = 0;
    const size_t e = parse_number(d, i, v);
    if (e == std::string_view::npos) break;
    out.values.push_back(v);
    i = e < d.size() && d[e] == ',' ? e : skip_ws(d, e);
    if (i >= d.size()) break;
    if (d[i] == ']') return i + 1;
    if (d[i] != ',') break;
    ++i;
    if (i < d.size() && is_ws(d[i])) i = skip_ws(d, i);
  }
  out.values.resize(mark);
  return std::string_view::npos;
}

}  // namespace

void find_number_arrays(std::string_view d, std::string_view key, size_t min_count, NumberArrays& out) {
  out.values.clear();
  out.spans.clear();
  const size_t n = d.size();
  size_t i = 0;
  while (i < n) {
    const char c = d[i];
    if (c != '"') {
      ++i;
      continue;
    }
    // A string: find its end (escapes skipped), then see whether it is the key.
    const size_t start = i + 1;
    size_t j = start;
    bool escaped = false;
    while (j < n && d[j] != '"') j += d[j] == '\\' ? (escaped = true, 2) : 1;
    if (j >= n) break;
    i = j + 1;
    if (escaped || d.substr(start, j - start) != key) continue;
    size_t k = skip_ws(d, i);
    if (k >= n || d[k] != ':') continue;
    k = skip_ws(d, k + 1);
    if (k >= n || d[k] != '[') continue;
    const size_t first = out.values.size();
    const size_t end = parse_array(d, k, out);
    if (end == std::string_view::npos) continue;  // scanning goes on inside the array
    const size_t count = out.values.size() - first;
    if (count < min_count) {
      out.values.resize(first);
    } else {
      out.spans.push_back({k, end, first, count});
    }
    i = end;
  }
}

NumberArrays find_number_arrays(std::string_view doc, std::string_view key, size_t min_count) {
  NumberArrays out;
  find_number_arrays(doc, key, min_count, out);
  return out;
}

}  // namespace whale::json
