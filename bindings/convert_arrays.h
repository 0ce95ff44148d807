// Typed-array memory as a native job may see it.
//
// JS can free or move an array's memory whenever it runs: transferring the
// ArrayBuffer (structuredClone, postMessage) detaches it, `resize()` shrinks a
// resizable one, and another thread may write a SharedArrayBuffer at any time.
// N-API offers no way to pin a buffer (a reference keeps the object, not its
// memory). So the rule is:
//   - a sync call on a non-shared buffer works on the JS memory in place: the JS
//     thread is blocked in the call and nothing else can reach that memory;
//   - otherwise (an async job, or a SharedArrayBuffer) the values are copied into
//     native memory on the JS thread before the call returns, and results are
//     copied back on the JS thread when the job is done, after checking that the
//     array still has the same length.
// Arrays the binding creates itself are not visible to JS until the job
// settles, so jobs write them in place.
#pragma once
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "convert.h"

namespace whale::bindings {

struct TypedArrayInfo {
  void* data = nullptr;
  size_t length = 0;  // elements (0 once detached or out of bounds after a resize)
  bool shared = false;
};

// Reads an array's memory description without running any JS.
inline TypedArrayInfo typed_array_info(napi_env env, napi_value value) {
  TypedArrayInfo info;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &type, &info.length, &info.data, &buffer, &offset) != napi_ok) {
    throw_invalid("expected a typed array");
  }
  bool is_plain = true;
  napi_is_arraybuffer(env, buffer, &is_plain);  // false for a SharedArrayBuffer
  info.shared = !is_plain;
  if (info.data == nullptr) info.length = 0;
  return info;
}

template <typename T>
std::unique_ptr<T[]> native_copy(const T* src, size_t n) {
  std::unique_ptr<T[]> copy(new T[n > 0 ? n : 1]);
  if (n > 0) std::memcpy(copy.get(), src, n * sizeof(T));
  return copy;
}

// An input the job only reads.
template <typename T>
class InArray {
 public:
  InArray() = default;
  InArray(const Napi::TypedArrayOf<T>& a, bool async) {
    const TypedArrayInfo info = typed_array_info(a.Env(), a);
    size_ = info.length;
    if (async || info.shared) {
      copy_ = native_copy(static_cast<const T*>(info.data), size_);
      data_ = copy_.get();
    } else {
      data_ = static_cast<const T*>(info.data);
    }
  }
  const T* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool copied() const noexcept { return copy_ != nullptr; }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<T[]> copy_;
};

// An array the job writes (and, with keep_values, also reads first).
template <typename T>
class OutArray {
 public:
  OutArray() = default;
  // fresh: created by the binding in this call and not yet visible to JS.
  OutArray(const Napi::TypedArrayOf<T>& a, bool async, bool keep_values, bool fresh = false)
      : ref_(Napi::Persistent(static_cast<Napi::Object>(a))) {
    const TypedArrayInfo info = typed_array_info(a.Env(), a);
    size_ = info.length;
    if (fresh || (!async && !info.shared)) {
      data_ = static_cast<T*>(info.data);
      return;
    }
    copy_.reset(new T[size_ > 0 ? size_ : 1]);
    if (keep_values && size_ > 0) std::memcpy(copy_.get(), info.data, size_ * sizeof(T));
    data_ = copy_.get();
  }
  T* data() noexcept { return data_; }
  size_t size() const noexcept { return size_; }

  // JS thread, after the job: whether commit() can write the results back.
  bool still_valid() const {
    if (!copy_) return true;
    const TypedArrayInfo info = typed_array_info(ref_.Env(), ref_.Value());
    return info.length == size_ && (size_ == 0 || info.data != nullptr);
  }
  // JS thread, after the job: copies the results into the JS array.
  void commit() {
    if (!copy_ || size_ == 0) return;
    const TypedArrayInfo info = typed_array_info(ref_.Env(), ref_.Value());
    std::memcpy(info.data, copy_.get(), size_ * sizeof(T));
  }
  Napi::Value value() const { return ref_.Value(); }

 private:
  Napi::ObjectReference ref_;
  T* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<T[]> copy_;
};

// The error for an output array that JS detached or resized while a job ran.
inline void throw_changed(const std::string& field) {
  throw_invalid(field + ": was detached or resized while the job ran; nothing was written to it");
}

// Client rows held for a job (see the rule at the top of this file).
struct HeldRows {
  aggregate::ClientUpdates view;
  std::vector<InArray<float>> rows;
};

// Checks that every row has clients[0]'s length (now: no JS runs from here on)
// and returns the bytes hold_rows would copy.
inline size_t rows_copy_bytes(const std::vector<Napi::Float32Array>& rows, bool async) {
  size_t bytes = 0, params = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const TypedArrayInfo info = typed_array_info(rows[i].Env(), rows[i]);
    if (i == 0) params = info.length;
    if (info.length != params) {
      throw EngineError(kErrInvalidArg,
                        "clients[" + std::to_string(i) + "]: has " + std::to_string(info.length) +
                            " values, clients[0] has " + std::to_string(params),
                        static_cast<long long>(i));
    }
    if (async || info.shared) bytes += info.length * sizeof(float);
  }
  return bytes;
}

inline HeldRows hold_rows(const std::vector<Napi::Float32Array>& rows, bool async) {
  HeldRows h;
  h.rows.reserve(rows.size());
  h.view.rows.reserve(rows.size());
  for (const Napi::Float32Array& r : rows) {
    h.rows.emplace_back(r, async);
    h.view.rows.push_back(h.rows.back().data());
  }
  h.view.params = h.rows.empty() ? 0 : h.rows.front().size();
  return h;
}

}  // namespace whale::bindings
