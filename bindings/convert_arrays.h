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

// Native memory for copies of JS arrays. Large blocks are 2 MiB aligned and
// advised to use huge pages (first-touch page faults otherwise dominate the
// copy), and copies of many MiB are split across a few threads.
struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
using CopyMemory = std::unique_ptr<void, FreeDeleter>;
CopyMemory allocate_copy_memory(size_t bytes);  // throws std::bad_alloc

struct CopySegment {
  const void* src;
  void* dst;
  size_t bytes;
};
void copy_segments(const std::vector<CopySegment>& segments);

template <typename T>
T* native_copy(const T* src, size_t n, CopyMemory& memory) {
  memory = allocate_copy_memory(n * sizeof(T));
  T* dst = static_cast<T*>(memory.get());
  copy_segments({CopySegment{src, dst, n * sizeof(T)}});
  return dst;
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
      data_ = native_copy(static_cast<const T*>(info.data), size_, copy_);
    } else {
      data_ = static_cast<const T*>(info.data);
    }
  }
  const T* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
  CopyMemory copy_;
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
    if (keep_values) {
      data_ = native_copy(static_cast<const T*>(info.data), size_, copy_);
    } else {
      copy_ = allocate_copy_memory(size_ * sizeof(T));
      data_ = static_cast<T*>(copy_.get());
    }
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
    copy_segments({CopySegment{copy_.get(), info.data, size_ * sizeof(T)}});
  }
  Napi::Value value() const { return ref_.Value(); }

 private:
  Napi::ObjectReference ref_;
  T* data_ = nullptr;
  size_t size_ = 0;
  CopyMemory copy_;
};

// The error for an output array that JS detached or resized while a job ran.
inline void throw_changed(const std::string& field) {
  throw_invalid(field + ": was detached or resized while the job ran; nothing was written to it");
}

// Client rows held for a job (see the rule at the top of this file).
struct HeldRows {
  aggregate::ClientUpdates view;
  CopyMemory copy;  // all copied rows, back to back
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
  std::vector<TypedArrayInfo> infos;
  size_t copied = 0;
  for (const Napi::Float32Array& r : rows) {
    infos.push_back(typed_array_info(r.Env(), r));
    if (async || infos.back().shared) copied += infos.back().length;
  }
  h.copy = allocate_copy_memory(copied * sizeof(float));
  float* next = static_cast<float*>(h.copy.get());
  std::vector<CopySegment> segments;
  for (const TypedArrayInfo& info : infos) {
    const float* src = static_cast<const float*>(info.data);
    if (async || info.shared) {
      segments.push_back(CopySegment{src, next, info.length * sizeof(float)});
      src = next;
      next += info.length;
    }
    h.view.rows.push_back(src);
  }
  copy_segments(segments);
  h.view.params = infos.empty() ? 0 : infos.front().length;
  return h;
}

}  // namespace whale::bindings
