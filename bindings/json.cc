// jsonNumberArrays: glue over native/json. Synchronous: the document's bytes are read while
// the JS thread is blocked in the call, and the result is copied into new JS arrays.
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../native/json/number_arrays.h"
#include "convert.h"
#include "convert_arrays.h"

namespace whale::bindings {
namespace {

// A big body's values (8 bytes per value, from 2 bytes of JSON) are not kept for the life of the process.
void release_if_big(json::NumberArrays& found) {
  if (found.values.capacity() > (size_t{1} << 20)) std::vector<double>().swap(found.values);
  if (found.spans.capacity() > (size_t{1} << 16)) std::vector<json::NumberArraySpan>().swap(found.spans);
}

// jsonNumberArrays(doc: Uint8Array, key: string, minCount: number)
//   -> undefined | { values: Float64Array, spans: Uint32Array (begin, end, first, count per array) }
Napi::Value NumberArrays(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[1].IsString() || !info[2].IsNumber())
      throw_invalid("jsonNumberArrays(doc, key, minCount): expected a Uint8Array, a string and a number");
    const std::string key = info[1].As<Napi::String>().Utf8Value();
    const double min_count = info[2].As<Napi::Number>().DoubleValue();
    if (!(min_count >= 0 && min_count <= 1e9)) throw_invalid("minCount: must be in [0, 1e9]");
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw_invalid("doc: expected a Uint8Array");
    // No JS runs from here until the result arrays are made (after the last read of doc).
    const TypedArrayInfo doc = typed_array_info(env, info[0]);
    if (doc.shared) throw_invalid("doc: a SharedArrayBuffer is not accepted");
    if (doc.length > std::numeric_limits<uint32_t>::max()) throw_invalid("doc: longer than 4 GiB");
    // Kept between calls (JS thread only): its vectors' capacity is reused.
    static thread_local json::NumberArrays found;
    json::find_number_arrays(std::string_view(static_cast<const char*>(doc.data), doc.length), key,
                             static_cast<size_t>(min_count), found);
    if (found.spans.empty()) {
      release_if_big(found);
      return env.Undefined();
    }
    Napi::Float64Array values = Napi::Float64Array::New(env, found.values.size());
    std::memcpy(values.Data(), found.values.data(), found.values.size() * sizeof(double));
    Napi::Uint32Array spans = Napi::Uint32Array::New(env, found.spans.size() * 4);
    uint32_t* s = spans.Data();
    for (const json::NumberArraySpan& span : found.spans) {
      *s++ = static_cast<uint32_t>(span.begin);
      *s++ = static_cast<uint32_t>(span.end);
      *s++ = static_cast<uint32_t>(span.first);
      *s++ = static_cast<uint32_t>(span.count);
    }
    release_if_big(found);
    Napi::Object out = Napi::Object::New(env);
    out.Set("values", values);
    out.Set("spans", spans);
    return out;
  });
}

}  // namespace

void init_json(Napi::Env env, Napi::Object exports) {
  exports.Set("jsonNumberArrays", Napi::Function::New(env, NumberArrays, "jsonNumberArrays"));
}

}  // namespace whale::bindings
