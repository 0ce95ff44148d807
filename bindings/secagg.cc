// secaggAddMasks, secaggSumRows: glue over native/secagg. Both are synchronous
// and work on the JS memory in place while the JS thread is blocked in the
// call (SharedArrayBuffer-backed arrays are refused: another thread could write them).
#include <string>
#include <vector>

#include "../native/secagg/masks.h"
#include "convert.h"
#include "convert_arrays.h"

namespace whale::bindings {
namespace {

template <typename T>
T* plain_array(const Napi::Value& v, napi_typedarray_type type, const std::string& field, size_t& length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_invalid(field + ": wrong typed array type");
  const TypedArrayInfo info = typed_array_info(v.Env(), v);
  if (info.shared) throw_invalid(field + ": a SharedArrayBuffer is not accepted");
  length = info.length;
  return static_cast<T*>(info.data);
}

unsigned read_bits(const Napi::Object& o) {
  const double bits = read_number(o, "bits", 32);
  if (!(bits >= 1 && bits <= 32) || bits != static_cast<unsigned>(bits))
    throw_invalid("bits: must be an integer in [1, 32]");
  return static_cast<unsigned>(bits);
}

Napi::Value AddMasks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const unsigned bits = read_bits(o);
    const bool parallel = read_bool(o, "parallel", true);
    Napi::Value acc_js = o.Get("acc"), seeds_js = o.Get("seeds"), signs_js = o.Get("signs");
    // No JS runs from here on.
    size_t n = 0, seed_bytes = 0, count = 0;
    uint32_t* acc = plain_array<uint32_t>(acc_js, napi_uint32_array, "acc", n);
    const uint8_t* seeds = plain_array<uint8_t>(seeds_js, napi_uint8_array, "seeds", seed_bytes);
    const int8_t* signs = plain_array<int8_t>(signs_js, napi_int8_array, "signs", count);
    if (seed_bytes != 32 * count)
      throw_invalid("seeds: expected 32 bytes per sign (" + std::to_string(32 * count) + "), got " +
                    std::to_string(seed_bytes));
    secagg::add_masks(acc, n, seeds, signs, count, bits, parallel);
    return env.Undefined();
  });
}

Napi::Value SumRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const unsigned bits = read_bits(o);
    const bool parallel = read_bool(o, "parallel", true);
    Napi::Value out_js = o.Get("out"), rows_v = o.Get("rows");
    if (!rows_v.IsArray()) throw_invalid("rows: expected an array of Uint32Array");
    Napi::Array rows_js = rows_v.As<Napi::Array>();
    std::vector<Napi::Value> row_values;
    for (uint32_t r = 0; r < rows_js.Length(); ++r) row_values.push_back(rows_js.Get(r));  // getters may run here
    // No JS runs from here on.
    size_t n = 0;
    uint32_t* out = plain_array<uint32_t>(out_js, napi_uint32_array, "out", n);
    std::vector<const uint32_t*> rows;
    for (size_t r = 0; r < row_values.size(); ++r) {
      size_t len = 0;
      const std::string field = "rows[" + std::to_string(r) + "]";
      rows.push_back(plain_array<uint32_t>(row_values[r], napi_uint32_array, field, len));
      if (len != n) throw_invalid(field + ": " + std::to_string(len) + " values, expected " + std::to_string(n));
      if (rows.back() < out + n && out < rows.back() + n) throw_invalid(field + ": must not overlap out");
    }
    secagg::sum_rows(out, n, rows.data(), rows.size(), bits, parallel);
    return env.Undefined();
  });
}

}  // namespace

void init_secagg(Napi::Env env, Napi::Object exports) {
  exports.Set("secaggAddMasks", Napi::Function::New(env, AddMasks, "secaggAddMasks"));
  exports.Set("secaggSumRows", Napi::Function::New(env, SumRows, "secaggSumRows"));
}

}  // namespace whale::bindings
