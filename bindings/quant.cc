// quantEncode, quantDecode, quantInspect, topkFeedback: glue over native/quant.
#include <memory>

#include "../native/quant/dispatch.h"
#include "../native/quant/topk.h"
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
    Napi::Float32Array values = read_f32(o.Get("values"), "values");
    quant::EncodeOptions opts;
    opts.codec = read_codec(o);
    opts.block_size = static_cast<uint32_t>(read_number(o, "blockSize", 64));
    std::string nf = o.Has("nonFinite") ? read_string(o, "nonFinite") : "error";
    if (nf != "error" && nf != "zero") throw_invalid("nonFinite: expected 'error' or 'zero'");
    opts.non_finite = nf == "zero" ? quant::NonFinite::kZero : quant::NonFinite::kError;
    opts.parallel = read_bool(o, "parallel", true);
    Device device = read_device(o);
    const uint64_t length = values.ElementLength();
    const size_t size = quant::encoded_size(opts, length);
    // Node allocates a Buffer's memory without zero-filling it (encode writes every byte);
    // hand it out as a plain Uint8Array so slice() copies as callers expect.
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, size);
    Napi::Uint8Array blob = Napi::Uint8Array::New(env, size, buf.ArrayBuffer(), buf.ByteOffset());
    std::vector<Napi::ObjectReference> keep;
    keep.push_back(Napi::Persistent(static_cast<Napi::Object>(values)));
    keep.push_back(Napi::Persistent(static_cast<Napi::Object>(blob)));
    const float* x = values.Data();
    uint8_t* out = blob.Data();
    auto blob_ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(static_cast<Napi::Object>(blob)));
    return run_job(
        env, read_async(info), [=] { quant::encode_on(device, opts, x, length, out); },
        [blob_ref](Napi::Env) -> Napi::Value { return blob_ref->Value(); }, std::move(keep));
  });
}

Napi::Object info_object(Napi::Env env, const quant::BlobInfo& i) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("codec", codec_name(i.codec));
  r.Set("blockSize", i.block_size);
  r.Set("length", static_cast<double>(i.length));
  r.Set("nonFiniteZeroed", (i.flags & quant::kFlagNonFiniteZeroed) != 0);
  return r;
}

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Uint8Array blob = read_u8(info[0], "blob");
    return info_object(env, quant::inspect(blob.Data(), blob.ByteLength()));
  });
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    Napi::Uint8Array blob = read_u8(o.Get("blob"), "blob");
    // Validates the whole blob (checksum included) before any allocation.
    const quant::BlobInfo bi = quant::inspect(blob.Data(), blob.ByteLength());
    Device device = read_device(o);
    bool parallel = read_bool(o, "parallel", true);
    Napi::Float32Array out;
    if (o.Get("out").IsUndefined()) {
      out = Napi::Float32Array::New(env, static_cast<size_t>(bi.length));
    } else {
      out = read_f32(o.Get("out"), "out");
      if (out.ElementLength() != bi.length) throw_invalid("out: length must equal the blob's length " + std::to_string(bi.length));
    }
    std::vector<Napi::ObjectReference> keep;
    keep.push_back(Napi::Persistent(static_cast<Napi::Object>(blob)));
    keep.push_back(Napi::Persistent(static_cast<Napi::Object>(out)));
    const uint8_t* data = blob.Data();
    const size_t size = blob.ByteLength();
    float* dst = out.Data();
    auto out_ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(static_cast<Napi::Object>(out)));
    return run_job(
        env, read_async(info), [=] { quant::decode_on(device, data, size, dst, parallel); },
        [out_ref](Napi::Env) -> Napi::Value { return out_ref->Value(); }, std::move(keep));
  });
}

Napi::Value TopkFeedback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = read_opts(info);
    Napi::Float32Array update = read_f32(o.Get("update"), "update");
    Napi::Float32Array residual = read_f32(o.Get("residual"), "residual");
    if (residual.ElementLength() != update.ElementLength()) throw_invalid("residual: length must equal update's");
    const double kd = read_number(o, "k", 0);
    if (!(kd >= 0) || kd != static_cast<double>(static_cast<size_t>(kd))) throw_invalid("k: expected an integer >= 0");
    const size_t n = update.ElementLength(), k = std::min(static_cast<size_t>(kd), n);
    std::vector<uint32_t> idx(k);
    std::vector<float> val(k);
    const size_t c = quant::topk_feedback(update.Data(), residual.Data(), n, k, idx.data(), val.data());
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
  exports.Set("quantEncode", Napi::Function::New(env, Encode, "quantEncode"));
  exports.Set("quantDecode", Napi::Function::New(env, Decode, "quantDecode"));
  exports.Set("quantInspect", Napi::Function::New(env, Inspect, "quantInspect"));
  exports.Set("topkFeedback", Napi::Function::New(env, TopkFeedback, "topkFeedback"));
}

}  // namespace whale::bindings
