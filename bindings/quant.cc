// quantEncode, quantDecode, quantInspect, topkFeedback: glue over native/quant.
#include <memory>

#include "../native/quant/dispatch.h"
#include "../native/quant/heap_tuning.h"
#include "../native/quant/topk.h"
#include "convert_arrays.h"
#include "promise_worker.h"

namespace whale::bindings {
namespace {

quant::Codec read_codec(const Napi::Object& o) {
  std::string s = read_string(o, "codec");
  if (s == "f32") return quant::Codec::kF32;
  if (s == "int8") return quant::Codec::kInt8;
  if (s == "int4") return quant::Codec::kInt4;
  if (s == "fp16") return quant::Codec::kFp16;
  if (s == "bf16") return quant::Codec::kBf16;
  throw_invalid("codec: unknown codec '" + s + "'");
}

const char* codec_name(quant::Codec c) {
  switch (c) {
    case quant::Codec::kF32: return "f32";
    case quant::Codec::kInt8: return "int8";
    case quant::Codec::kInt4: return "int4";
    case quant::Codec::kFp16: return "fp16";
    case quant::Codec::kBf16: return "bf16";
  }
  return "unknown";
}

Napi::Uint8Array read_u8(const Napi::Value& v, const char* field) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw_invalid(std::string(field) + ": expected a Uint8Array or Buffer");
  }
  return v.As<Napi::Uint8Array>();
}

Napi::Value Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const bool async = read_async(info);
    Napi::Value values_js = o.Get("values");
    quant::EncodeOptions opts;
    opts.codec = read_codec(o);
    const double bs = read_number(o, "blockSize", 64);
    if (!(bs >= 0 && bs <= 65536)) throw_invalid("blockSize: must be an even number in [32, 4096]");
    opts.block_size = static_cast<uint32_t>(bs);
    std::string nf = o.Has("nonFinite") ? read_string(o, "nonFinite") : "error";
    if (nf != "error" && nf != "zero") throw_invalid("nonFinite: expected 'error' or 'zero'");
    opts.non_finite = nf == "zero" ? quant::NonFinite::kZero : quant::NonFinite::kError;
    std::string range = o.Has("outOfRange") ? read_string(o, "outOfRange") : "clamp";
    if (range != "clamp" && range != "error") throw_invalid("outOfRange: expected 'clamp' or 'error'");
    opts.out_of_range = range == "error" ? quant::OutOfRange::kError : quant::OutOfRange::kClamp;
    opts.parallel = read_bool(o, "parallel", true);
    Device device = read_device(o);
    // No JS runs from here on.
    auto values = std::make_shared<InArray<float>>(read_f32(values_js, "values"), async);
    const uint64_t length = values->size();
    const size_t size = quant::encoded_size(opts, length);
    // Node allocates a Buffer's memory without zero-filling it (encode writes every byte);
    // hand it out as a plain Uint8Array so slice() copies as callers expect.
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, size);
    Napi::Uint8Array blob_js = Napi::Uint8Array::New(env, size, buf.ArrayBuffer(), buf.ByteOffset());
    auto blob = std::make_shared<OutArray<uint8_t>>(blob_js, async, false, true);
    return run_job(
        env, async, [=] { quant::encode_on(device, opts, values->data(), length, blob->data()); },
        [values, blob](Napi::Env) -> Napi::Value { return blob->value(); });
  });
}

Napi::Object info_object(Napi::Env env, const quant::BlobInfo& i) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("codec", codec_name(i.codec));
  r.Set("blockSize", i.block_size);
  r.Set("length", static_cast<double>(i.length));
  r.Set("nonFiniteZeroed", (i.flags & quant::kFlagNonFiniteZeroed) != 0);
  if (i.codec == quant::Codec::kFp16) {
    r.Set("saturated", (i.flags & quant::kFlagSaturated) != 0);
    r.Set("flushedToZero", (i.flags & quant::kFlagFlushedToZero) != 0);
  }
  return r;
}

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    InArray<uint8_t> blob(read_u8(info[0], "blob"), false);
    return info_object(env, quant::inspect(blob.data(), blob.size()));
  });
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    const bool async = read_async(info);
    Napi::Value blob_js = o.Get("blob");
    Device device = read_device(o);
    bool parallel = read_bool(o, "parallel", true);
    Napi::Value out_value = o.Get("out");
    // No JS runs from here on.
    auto blob = std::make_shared<InArray<uint8_t>>(read_u8(blob_js, "blob"), async);
    // The header, checked against the blob's size, bounds the allocation below;
    // decode() validates everything else before writing.
    const quant::BlobInfo bi = quant::inspect_header(blob->data(), blob->size());
    const bool fresh = out_value.IsUndefined();
    Napi::Float32Array out_js;
    if (fresh) {
      out_js = new_result_f32(env, static_cast<size_t>(bi.length));
    } else {
      out_js = read_f32(out_value, "out");
      if (typed_array_info(env, out_js).length != bi.length) {
        throw_invalid("out: length must equal the blob's length " + std::to_string(bi.length));
      }
    }
    auto out = std::make_shared<OutArray<float>>(out_js, async, false, fresh);
    return run_job(
        env, async, [=] { quant::decode_on(device, blob->data(), blob->size(), out->data(), parallel); },
        [blob, out](Napi::Env) -> Napi::Value {
          if (!out->still_valid()) throw_changed("out");
          out->commit();
          return out->value();
        });
  });
}

Napi::Value TopkFeedback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    Napi::Value update_js = o.Get("update"), residual_js = o.Get("residual");
    const double kd = read_number(o, "k", 0);
    if (!(kd >= 0) || kd > 4294967295.0 || kd != static_cast<double>(static_cast<size_t>(kd))) {
      throw_invalid("k: expected an integer >= 0");
    }
    // No JS runs from here on.
    InArray<float> update(read_f32(update_js, "update"), false);
    OutArray<float> residual(read_f32(residual_js, "residual"), false, true);
    if (residual.size() != update.size()) throw_invalid("residual: length must equal update's");
    const size_t n = update.size(), k = std::min(static_cast<size_t>(kd), n);
    std::vector<uint32_t> idx(k);
    std::vector<float> val(k);
    const size_t c = quant::topk_feedback(update.data(), residual.data(), n, k, idx.data(), val.data());
    residual.commit();
    auto ri = Napi::Uint32Array::New(env, c);
    auto rv = Napi::Float32Array::New(env, c);
    std::copy(idx.begin(), idx.begin() + c, ri.Data());
    std::copy(val.begin(), val.begin() + c, rv.Data());
    Napi::Object r = Napi::Object::New(env);
    r.Set("indices", ri);
    r.Set("values", rv);
    return r;
  });
}

}  // namespace

void init_quant(Napi::Env env, Napi::Object exports) {
  // Blobs and decoded arrays are large fresh allocations: reuse faulted-in heap
  // memory for them instead of new pages each call (native/quant/heap_tuning.h).
  quant::keep_large_blocks_in_heap();
  exports.Set("quantEncode", Napi::Function::New(env, Encode, "quantEncode"));
  exports.Set("quantDecode", Napi::Function::New(env, Decode, "quantDecode"));
  exports.Set("quantInspect", Napi::Function::New(env, Inspect, "quantInspect"));
  exports.Set("topkFeedback", Napi::Function::New(env, TopkFeedback, "topkFeedback"));
}

}  // namespace whale::bindings
