// Finds the flat arrays of JSON numbers that are the value of a given key
// (`"data": [0.1, 2, -3e-4, ...]` in a V2 inference body) and parses them into
// doubles, so the rest of the document can go through the JSON parser without
// turning every element into a value on the JS heap. Pure C++, no Node types.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace whale::json {

// One extracted array: bytes [begin, end) of the document (from '[' to ']' inclusive)
// and its `count` values, stored from `first` in NumberArrays::values.
struct NumberArraySpan {
  size_t begin;
  size_t end;
  size_t first;
  size_t count;
};

struct NumberArrays {
  std::vector<double> values;
  std::vector<NumberArraySpan> spans;
};

// The arrays of at least `min_count` numbers that follow `"<key>":` (whitespace allowed
// around the colon) outside strings, in document order. An array is taken only when it
// holds nothing but numbers in JSON's exact grammar (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
// separated by commas, and each value is a finite double that parses to what
// ECMAScript's JSON.parse gives (correctly rounded); anything else (nesting, strings,
// `1.`, `01`, `NaN`, a value beyond the double range) leaves that array to the JSON
// parser. The document itself is not validated: the caller parses what is left.
NumberArrays find_number_arrays(std::string_view doc, std::string_view key, size_t min_count);
// The same into `out` (cleared first; its capacity is reused across calls).
void find_number_arrays(std::string_view doc, std::string_view key, size_t min_count, NumberArrays& out);

}  // namespace whale::json
