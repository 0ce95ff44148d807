#include <napi.h>

namespace whale::bindings {
void init_devices(Napi::Env env, Napi::Object exports);
void init_aggregate(Napi::Env env, Napi::Object exports);
void init_quant(Napi::Env env, Napi::Object exports);
void init_sched(Napi::Env env, Napi::Object exports);
void init_vindex(Napi::Env env, Napi::Object exports);
void init_anomaly(Napi::Env env, Napi::Object exports);
void init_alloc(Napi::Env env, Napi::Object exports);
void init_secagg(Napi::Env env, Napi::Object exports);
void init_json(Napi::Env env, Napi::Object exports);
}  // namespace whale::bindings

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  whale::bindings::init_devices(env, exports);
  whale::bindings::init_aggregate(env, exports);
  whale::bindings::init_quant(env, exports);
  whale::bindings::init_sched(env, exports);
  whale::bindings::init_vindex(env, exports);
  whale::bindings::init_anomaly(env, exports);
  whale::bindings::init_alloc(env, exports);
  whale::bindings::init_secagg(env, exports);
  whale::bindings::init_json(env, exports);
  return exports;
}

NODE_API_MODULE(whale_native, Init)
