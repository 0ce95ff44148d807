// native/json: which arrays are taken, and their values against glibc's strtod (correctly
// rounded, the double-precision reference) on random numbers written every way JSON allows.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../json/number_arrays.h"
#include "check.h"

using whale::json::find_number_arrays;
using whale::json::NumberArrays;

static size_t count_of(const std::string& doc, size_t min_count = 1) {
  return find_number_arrays(doc, "data", min_count).spans.size();
}

static void which_arrays() {
  CHECK(count_of(R"({"data":[1,2,3]})") == 1, "a flat array after the key is taken");
  CHECK(count_of(R"({ "data" :
    [ 1 , 2	, 3 ] })") == 1,
        "whitespace around the colon and the elements");
  CHECK(count_of(R"({"data":[]})", 0) == 1 && count_of(R"({"data":[]})", 1) == 0, "an empty array only with min 0");
  CHECK(count_of(R"({"data":[1,2]})", 3) == 0, "fewer than min_count elements: left");
  CHECK(count_of(R"({"data":[[1,2],[3,4]]})") == 0, "nested: left to the parser");
  CHECK(count_of(R"({"data":[1,"2",3]})") == 0, "a string element: left");
  CHECK(count_of(R"({"data":[true,1]})") == 0, "a boolean element: left");
  CHECK(count_of(R"({"name":"data","x":[1,2]})") == 0, "the key as a value: not a key");
  CHECK(count_of(R"({"name":"\"data\":[1]","data2":[1]})") == 0, "inside a string, or another key: left");
  CHECK(count_of(R"({"d\u0061ta":[1,2]})") == 0, "an escaped key: left to the parser");
  CHECK(count_of(R"({"a":"x\\","data":[1,2]})") == 1, "a string ending in an escaped backslash");
  CHECK(count_of(R"([{"data":[1]},{"data":[2,3]}])") == 2, "every occurrence, in order");
  for (const char* bad : {"01", "1.", ".5", "-", "+1", "1e", "1e+", "NaN", "Infinity", "0x10", "1,", "1 2", "- 1"}) {
    std::string doc = std::string(R"({"data":[)") + bad + "]}";
    CHECK(count_of(doc) == 0, (std::string("not a JSON number list, left: ") + bad).c_str());
  }
  CHECK(count_of(R"({"data":[1e400]})") == 0, "beyond the double range: left to the parser");
  CHECK(count_of(R"({"data":[1,2)") == 0, "unterminated: left");
  CHECK(count_of(R"({"data")") == 0 && count_of(R"({"data)") == 0 && count_of("") == 0, "truncated documents");
  const NumberArrays r = find_number_arrays(R"({"data" : [ -0, 0.5e1 , 7 ],"data":[1]})", "data", 1);
  CHECK(r.spans.size() == 2 && r.spans[0].begin == 10 && r.spans[0].count == 3 && r.spans[1].first == 3,
        "span offsets: begin at '[', first value index");
  CHECK(r.spans.size() == 2 && std::string(R"({"data" : [ -0, 0.5e1 , 7 ],"data":[1]})")[r.spans[0].end - 1] == ']',
        "span end just past ']'");
  CHECK(r.values.size() == 4 && std::signbit(r.values[0]) && r.values[1] == 5 && r.values[2] == 7,
        "values: -0 keeps its sign");
}

static void values_against_strtod() {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> mag(-30, 30);
  std::string doc = R"({"inputs":[{"name":"x","data":[)";
  std::vector<std::string> texts;
  char buf[64];
  for (int i = 0; i < 200000; ++i) {
    const double v = std::pow(10.0, mag(rng)) * (rng() & 1 ? -1 : 1);
    switch (i % 10) {
      case 0: std::snprintf(buf, sizeof buf, "%.17g", v); break;
      case 1: std::snprintf(buf, sizeof buf, "%.9g", v); break;
      case 2: std::snprintf(buf, sizeof buf, "%.3e", v); break;
      case 3: std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(rng() % 2000001) - 1000000); break;
      case 4: std::snprintf(buf, sizeof buf, "%.25E", v); break;
      case 5: std::snprintf(buf, sizeof buf, "%.15g", v); break;        // the exact (Clinger) path
      case 6: std::snprintf(buf, sizeof buf, "%.6f", v / 1e25); break;  // leading zeros of a fraction
      case 7: std::snprintf(buf, sizeof buf, "%.16g", v); break;        // 16 digits: either side of 2^53
      case 8:  // integers around 2^53 = 9007199254740992, the exact path's bound
        std::snprintf(buf, sizeof buf, "%s%llu", rng() & 1 ? "-" : "", 9007199254740988ull + rng() % 9);
        break;
      default: std::snprintf(buf, sizeof buf, "%.12fe%d", std::fmod(v, 10.0), static_cast<int>(rng() % 60) - 30); break;
    }
    texts.emplace_back(buf);
    doc += (i ? "," : "") + texts.back();
  }
  doc += "]}]}";
  const NumberArrays r = find_number_arrays(doc, "data", 1);
  CHECK(r.spans.size() == 1 && r.values.size() == texts.size(), "200000 numbers (10 notations) taken as one array");
  size_t same = 0;
  for (size_t i = 0; i < texts.size() && i < r.values.size(); ++i)
    same += r.values[i] == std::strtod(texts[i].c_str(), nullptr);
  CHECK(same == texts.size(), "every value bit-equal to strtod's");
}

int main() {
  which_arrays();
  values_against_strtod();
  return report();
}
